"""Routing and fitting time of the default router (static encoder + tag features) against the
plain static encoder, in the same process, alternating, on the scaling benchmark's cells.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/default_encoder_timing.py --llms 11 \\
        --rows 2000 --n-timed 300 --rounds 2 --out default-encoder-timing.json

Each round fits and times both routers (``benchmarks/scaling.py``'s ``measure_cell``); the table
gives the median over rounds and the ratio tags / static. The budget is route p50 ≤ 1 ms with 11
LLMs, embedding included.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import scaling  # noqa: E402

import mixllm_core.router as router_module  # noqa: E402
from mixllm_core.encoders import StaticEncoder  # noqa: E402
from mixllm_core.encoders.tagged import default_router_encoder  # noqa: E402

KEYS = (
    ("route p50 ms (wall)", lambda r: r["route"]["p50_ms"]),
    ("route p50 ms (cpu)", lambda r: r["route_cpu"]["p50_ms"]),
    ("route p99 ms (wall)", lambda r: r["route"]["p99_ms"]),
    ("fit s (cpu)", lambda r: r["fit_cpu_s"]),
    ("dim", lambda r: r["dim"]),
)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--llms", type=int, default=11)
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--n-timed", type=int, default=300)
    p.add_argument("--n-batch", type=int, default=256)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    makers = {
        "static": (StaticEncoder, True),
        "tags (default)": (default_router_encoder, True),
        "tags, no labels": (default_router_encoder, False),  # the tagger clusters
    }
    with_tasks = scaling.make_world

    def without_tasks(n: int, m: int, *, seed: int = 0) -> Any:
        return replace(with_tasks(n, m, seed=seed), tasks=None)

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in makers}
    for _ in range(args.rounds):
        for name, (make, labels) in makers.items():
            router_module.default_router_encoder = make  # type: ignore[assignment]
            scaling.make_world = with_tasks if labels else without_tasks
            cell = scaling.measure_cell(args.llms, args.rows, args.n_timed, args.n_batch)
            runs[name].append(cell)
    table = {
        name: {key: statistics.median(get(r) for r in cells) for key, get in KEYS}
        for name, cells in runs.items()
    }
    print(f"{args.llms} LLMs, {args.rows} rows, {args.n_timed} routes, median of {args.rounds}")
    print(f"{'':<22}" + "".join(f"{n:>17}" for n in table) + "  (ratio to static)")
    for key, _ in KEYS:
        base = table["static"][key]
        cells = [f"{table[n][key]:>9.3f} ({table[n][key] / base:4.2f})" for n in table]
        print(f"{key:<22}" + "".join(f"{c:>17}" for c in cells))
    args.out.write_text(
        json.dumps(
            {"settings": vars(args) | {"out": str(args.out)}, "table": table, "runs": runs},
            indent=1,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
