"""What the bounded write costs a route on a PostgreSQL log: writer thread vs inline write.

A route on a database over the network hands its decision's write to the log's writer thread
and waits for it at most ``write_timeout_s`` (a server that hangs cannot hold the route). The
baseline, in the same run, is the write done inline in the route's thread (what the log did
before). Two routers on two fresh databases on a PostgreSQL server started on loopback (as the
tests do) route the same queries in alternating blocks of ``--block``; the table gives p50/p90
of one route (write included) and the ratio of the p50s.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/log_write_path.py --blocks 10 --out w.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "shared_state"))

from mixllm_core import MixLLMRouter  # noqa: E402
from mixllm_core.sqllog import SQLLog  # noqa: E402
from mixllm_core.testing import HashingEncoder, make_synthetic_world  # noqa: E402


def inline_append(self: SQLLog, table: Any, row: dict[str, Any]) -> None:
    """The baseline: the write in the route's own thread, unbounded."""
    if not self._pending and self.up and self._write_row(table, row) is None:
        return
    self._keep(table, row)


def main() -> None:
    import postgres_server

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=10)
    p.add_argument("--block", type=int, default=30, help="routes per block")
    p.add_argument("--out", default="log_write_path.json")
    args = p.parse_args()
    world = make_synthetic_world(args.blocks * args.block, seed=1)
    fitted = MixLLMRouter(encoder=HashingEncoder(), seed=0).fit(world)
    server = postgres_server.start()
    try:
        times: dict[str, list[float]] = {"writer": [], "inline": []}
        routers = {}
        for name in times:
            log = SQLLog(server.database(f"w_{name}"))
            if name == "inline":
                log._append = inline_append.__get__(log)  # type: ignore[method-assign]
            routers[name] = MixLLMRouter.from_state(
                fitted.get_state(), encoder=fitted.encoder, log=log, sync_interval_s=None
            )
        for b in range(args.blocks):
            for name, router in routers.items():
                for q in world.queries[b * args.block : (b + 1) * args.block]:
                    t = time.perf_counter()
                    router.route(q)
                    times[name].append(time.perf_counter() - t)
        result = {
            name: {
                "p50_ms": 1e3 * statistics.median(v),
                "p90_ms": 1e3 * statistics.quantiles(v, n=10)[-1],
                "n": len(v),
            }
            for name, v in times.items()
        }
        result["ratio_p50"] = {
            "writer/inline": result["writer"]["p50_ms"] / result["inline"]["p50_ms"]
        }
        print(f"{'path':8} {'p50 ms':>8} {'p90 ms':>8} {'n':>5}")
        for name in times:
            r = result[name]
            print(f"{name:8} {r['p50_ms']:8.3f} {r['p90_ms']:8.3f} {r['n']:5d}")
        print(f"p50 ratio writer/inline: {result['ratio_p50']['writer/inline']:.3f}")
        Path(args.out).write_text(json.dumps(result, indent=1))
        for router in routers.values():
            router.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
