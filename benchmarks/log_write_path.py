"""What the bounded write costs a route on a PostgreSQL log: watched vs unwatched write.

A route's write to PostgreSQL registers its socket with the log's watchdog, which cuts it past
``write_timeout_s`` (a server that hangs cannot hold the route). The baseline, in the same run,
is the same write unwatched (what the log did before). Two routers on two fresh databases on a PostgreSQL server started on loopback (as the
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "shared_state"))

from mixllm_core import MixLLMRouter  # noqa: E402
from mixllm_core.sqllog import SQLLog  # noqa: E402
from mixllm_core.testing import HashingEncoder, make_synthetic_world  # noqa: E402


class Unwatched:
    """The baseline's watchdog: watches nothing."""

    @contextmanager
    def watch(self, fd: int | None, timeout_s: float) -> Iterator[None]:
        yield


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
        times: dict[str, list[float]] = {"watched": [], "unwatched": []}
        routers = {}
        for name in times:
            log = SQLLog(server.database(f"w_{name}"))
            if name == "unwatched":
                log._watchdog = Unwatched()  # type: ignore[assignment]
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
            "watched/unwatched": result["watched"]["p50_ms"] / result["unwatched"]["p50_ms"]
        }
        print(f"{'path':8} {'p50 ms':>8} {'p90 ms':>8} {'n':>5}")
        for name in times:
            r = result[name]
            print(f"{name:8} {r['p50_ms']:8.3f} {r['p90_ms']:8.3f} {r['n']:5d}")
        print(f"p50 ratio watched/unwatched: {result['ratio_p50']['watched/unwatched']:.3f}")
        Path(args.out).write_text(json.dumps(result, indent=1))
        for router in routers.values():
            router.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
