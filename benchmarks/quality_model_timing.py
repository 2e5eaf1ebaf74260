"""Routing time of the default router with each quality model, in the same process, alternating.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/quality_model_timing.py --llms 11 \\
        --rows 2000 --n-timed 100 --models linear rf --out quality-model-timing.json

Each model's router (default encoder: static + tag features) is fitted on the scaling benchmark's
synthetic rows (``benchmarks/scaling.py``), then routes ``--n-timed`` unseen prompts one at a time,
the models taking turns prompt by prompt so that both see the same load. The table gives route
p50/p99 (wall) and ``predict_features`` p50 for one pre-embedded query (the quality and cost
predictions alone), and each as a ratio to the first model. The budget is route p50 ≤ 1 ms with
11 LLMs, embedding included.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import scaling  # noqa: E402

from mixllm_core import MixLLMRouter  # noqa: E402


def _ms(fn: Any, *args: Any) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return (time.perf_counter() - t0) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--llms", type=int, default=11)
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--n-timed", type=int, default=100)
    p.add_argument("--models", nargs="+", default=["linear", "rf"])
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    world = scaling.make_world(args.rows + args.n_timed, args.llms, seed=0)
    train = world.subset(np.arange(args.rows))
    timed = world.queries[args.rows :]
    routers: dict[str, MixLLMRouter] = {}
    fit_s: dict[str, float] = {}
    for model in args.models:
        t0 = time.perf_counter()
        routers[model] = MixLLMRouter(quality_model=model).fit(train)
        fit_s[model] = time.perf_counter() - t0
        routers[model].route("a first decision: lazy allocations")
    route: dict[str, list[float]] = {m: [] for m in args.models}
    predict: dict[str, list[float]] = {m: [] for m in args.models}
    for q in timed:
        for model, router in routers.items():
            route[model].append(_ms(router.route, q))
            X, F = router.features([q])
            predict[model].append(_ms(router.predict_features, X, F))
    table = {
        m: {
            "route p50 ms": float(np.median(route[m])),
            "route p99 ms": float(np.percentile(route[m], 99)),
            "predict p50 ms": float(np.median(predict[m])),
            "fit s": fit_s[m],
        }
        for m in args.models
    }
    base = args.models[0]
    print(f"{args.llms} LLMs, {args.rows} rows, {args.n_timed} routes (wall, same run)")
    print(f"{'':<16}" + "".join(f"{m:>22}" for m in args.models))
    for key in table[base]:
        cells = [f"{table[m][key]:9.3f} ({table[m][key] / table[base][key]:6.1f}×)" for m in table]
        print(f"{key:<16}" + "".join(f"{c:>22}" for c in cells))
    args.out.write_text(
        json.dumps({"settings": vars(args) | {"out": str(args.out)}, "table": table}, indent=1)
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
