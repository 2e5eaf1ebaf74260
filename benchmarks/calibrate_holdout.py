"""Does a λ calibrated on one half of the unseen rows meet its target on the other half?

Per seed: fit the default router on half of the rows, calibrate λ on a quarter for each target
(a share of the priciest LLM's mean cost, or of the best LLM's mean quality), and measure the
mean cost and quality of the routed traffic on the last quarter.

    python benchmarks/calibrate_holdout.py --data rb nim synthetic --seeds 0 1 2 --out /tmp/cal.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from mixllm_core import MixLLMRouter
from mixllm_core.data import RoutingData, load_routing_data
from mixllm_core.experiments.synthetic import make_synthetic_world

PATHS = {
    "rb": "../shared/data/routerbench_subset/routerbench_arc_mbpp_winogrande.parquet",
    "nim": "../shared/data/llmrouter_nim/llmrouter_dcrouter_scores.parquet",
}
COST_SHARES = (0.1, 0.25, 0.5)
QUALITY_SHARES = (0.9, 0.95, 1.0)


def routed(router: MixLLMRouter, data: RoutingData, lam: float) -> tuple[float, float]:
    p = router.predict(data.queries)
    S = router.maker.scores(
        np.asarray(p["quality"]),
        np.asarray(p["cost"]),
        router.c_ref(),
        uncertainty=np.asarray(p["uncertainty"]),
        policy=replace(router.policy, lam=lam),
    )
    pick, rows = S.argmax(axis=1), np.arange(len(data))
    assert data.cost is not None
    return float(data.cost[rows, pick].mean()), float(data.quality[rows, pick].mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", nargs="+", default=["rb", "nim", "synthetic"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rows_out = []
    for name in args.data:
        data = (
            make_synthetic_world(seed=0) if name == "synthetic" else load_routing_data(PATHS[name])
        )
        for seed in args.seeds:
            order = np.random.default_rng(seed).permutation(len(data))
            fit, cal, hold = (
                data.subset(r) for r in np.split(order, [len(data) // 2, 3 * len(data) // 4])
            )
            router = MixLLMRouter(seed=seed).fit(fit)
            assert cal.cost is not None
            top_cost = float(cal.cost.mean(axis=0).max())
            targets = [("cost", s, s * top_cost) for s in COST_SHARES]
            targets += [("quality_share", s, s) for s in QUALITY_SHARES]
            for kind, share, value in targets:
                kw = {"target_cost": value} if kind == "cost" else {"target_quality_share": value}
                r = router.calibrate(cal, **kw)  # type: ignore[arg-type]
                c, q = routed(router, hold, r.lam)
                hold_best = float(hold.quality.mean(axis=0).max())
                goal = value if kind == "cost" else share * hold_best
                hit = c <= goal * 1.05 if kind == "cost" else q >= goal - 0.005
                rows_out.append(
                    {
                        "data": name,
                        "seed": seed,
                        "target": kind,
                        "share": share,
                        "goal": goal,
                        "lam": r.lam,
                        "cal_met": r.met,
                        "cal_cost": r.cost,
                        "cal_quality": r.quality,
                        "hold_cost": c,
                        "hold_quality": q,
                        "hit": bool(hit),
                    }
                )
                got = c / goal if kind == "cost" else q / hold_best
                print(
                    f"{name:9s} s{seed} {kind:13s} {share:4.2f}  λ={r.lam:9.4g} cal_met={r.met!s:5s} "
                    f"held-out {'cost/target' if kind == 'cost' else 'quality/best'}={got:.3f} hit={hit}",
                    flush=True,
                )
    print("\nhit rate (cost within +5% of target / quality within 0.005 of target):")
    for name in args.data:
        for kind in ("cost", "quality_share"):
            sel = [r for r in rows_out if r["data"] == name and r["target"] == kind]
            ratio = [
                r["hold_cost"] / r["goal"] if kind == "cost" else r["hold_quality"] / r["goal"]
                for r in sel
            ]
            print(
                f"  {name:9s} {kind:13s} {sum(r['hit'] for r in sel)}/{len(sel)}  "
                f"held-out/target mean {np.mean(ratio):.3f} (min {np.min(ratio):.3f}, max {np.max(ratio):.3f})"
            )
    if args.out:
        Path(args.out).write_text(json.dumps(rows_out, indent=1))


if __name__ == "__main__":
    main()
