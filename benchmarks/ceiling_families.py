"""The full-information ceiling of the continual-learning replay, per router family.

The replay fits on 30% of the training rows and streams the other 70% with feedback for the
chosen LLM only. No feedback can tell a router more than every LLM's score on the streamed rows,
i.e. all the training rows: a router fit on 100% of them is the ceiling of what the stream can
add. Per data set, split seed and router family this script fits once on the replay's 30%
(``split_offline_stream``, as ``replay_seeds.py``) and once on every training row (other shares
with ``--shares``), and scores AIQ on the test rows over the bench's λ grid.

Families: ``mixllm`` (the replay's router: ``StaticEncoder``, as ``replay_seeds.py``),
``mixllm-default`` (``MixLLMRouter()``'s default encoder, tag features), the bench's learned
baselines (``experiments.baselines.BASELINES``: knn, knn-cost, knn-cv, mlp, mf, on the bench's
sentence embedding) and ``task-mean`` (each LLM's mean score and cost per task of the training
rows). Baselines choose with the rule mixllm uses (``baselines.sweep``), ``c_ref`` the largest
mean training cost of the rows they were fit on (what ``MixLLMRouter.c_ref`` is).

    OMP_NUM_THREADS=1 nice -n 10 env PYTHONPATH=. python benchmarks/ceiling_families.py \
        --data routerbench nim routerarena --seeds 0 1 2 3 4 --out ceiling.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from mixllm_core import MixLLMRouter
from mixllm_core.data import RoutingData, load_routing_data
from mixllm_core.encoders import StaticEncoder
from mixllm_core.experiments.baselines import BASELINES, sweep
from mixllm_core.experiments.bench import LAMBDA_GRID, cached_encoder
from mixllm_core.experiments.replay import aiq_on, split_offline_stream
from mixllm_core.metrics import aiq

DATA = {
    "routerbench": "../shared/data/routerbench_subset/routerbench_arc_mbpp_winogrande.parquet",
    "nim": "../shared/data/llmrouter_nim/llmrouter_dcrouter_scores.parquet",
    "routerarena": "../shared/data/routerarena_sub10/routerarena_sub10_cached_results.parquet",
}
FAMILIES = ["mixllm", "mixllm-default", *BASELINES, "task-mean"]


def _cost(d: RoutingData) -> np.ndarray:
    return d.cost if d.cost is not None else np.zeros_like(d.quality)


def _aiq_of_choices(choices: dict, test: RoutingData, max_cost: float) -> float:
    rows = np.arange(len(test))
    cost = _cost(test)
    costs = [float(cost[rows, idx].mean()) for idx in choices.values()]
    quals = [float(test.quality[rows, idx].mean()) for idx in choices.values()]
    return aiq(costs, quals, max_cost)


def _task_mean(fit: RoutingData, test: RoutingData) -> tuple[np.ndarray, np.ndarray]:
    """Each LLM's mean training score and cost per task (the overall mean for an unseen task)."""
    q_all, c_all = fit.quality.mean(axis=0), _cost(fit).mean(axis=0)
    tasks = np.array(fit.tasks if fit.tasks is not None else [""] * len(fit))
    Q = np.tile(q_all, (len(test), 1))
    C = np.tile(c_all, (len(test), 1))
    test_tasks = np.array(test.tasks if test.tasks is not None else [""] * len(test))
    for t in np.unique(test_tasks):
        rows = tasks == t
        if rows.any():
            Q[test_tasks == t] = fit.quality[rows].mean(axis=0)
            C[test_tasks == t] = _cost(fit)[rows].mean(axis=0)
    return Q, C


def _mixllm(fit: RoutingData, test: RoutingData, seed: int, default: bool, max_cost: float):
    router = (
        MixLLMRouter(seed=seed) if default else MixLLMRouter(encoder=StaticEncoder(), seed=seed)
    )
    router.policy = router.maker.policy = replace(router.policy, alpha=0.05)  # as replay_seeds
    router.fit(fit)
    return aiq_on(router, test, LAMBDA_GRID, max_cost)


def run(name: str, seed: int, families: list[str], shares: list[float]) -> dict:
    data = load_routing_data(DATA[name])
    train, test = data.train_test_split(seed=seed)
    max_cost = float(_cost(test).mean(axis=0).max())
    # the replay's 30% (same permutation), then growing shares of the same order, up to all rows
    perm = np.random.default_rng(seed).permutation(len(train))
    offline, _ = split_offline_stream(train, 0.3, seed)
    fits = {}
    for share in shares:
        if share == 0.3:
            fits[share] = offline
        elif share == 1.0:
            fits[share] = train
        else:
            fits[share] = train.subset(np.sort(perm[: int(round(share * len(train)))]))
    need_x = any(f in BASELINES for f in families)
    if need_x:  # the bench's embedding (cached per data source)
        enc = cached_encoder(data)
        X_all = {q: x for q, x in zip(train.queries, enc.encode(train.queries))}
        Xte = enc.encode(test.queries)
        if hasattr(enc, "save_cache"):
            enc.save_cache()
    oracle_q = float(test.quality.max(axis=1).mean())
    best = test.quality >= test.quality.max(axis=1, keepdims=True) - 1e-12
    oracle = np.argmin(np.where(best, _cost(test), np.inf), axis=1)  # as the bench's oracle
    single = [
        _aiq_of_choices({None: np.full(len(test), j)}, test, max_cost)
        for j in range(len(test.llms))
    ]
    out: dict = {
        "best_single_aiq": max(single),
        "oracle_aiq": _aiq_of_choices({None: oracle}, test, max_cost),
        "oracle_quality": oracle_q,
        "families": {},
    }
    for fam in families:
        row = {}
        for share, fit in fits.items():
            t0 = time.perf_counter()
            if fam in ("mixllm", "mixllm-default"):
                value = _mixllm(fit, test, seed, fam == "mixllm-default", max_cost)
            else:
                c_ref = float(_cost(fit).mean(axis=0).max()) or 1.0
                if fam == "task-mean":
                    Q, C = _task_mean(fit, test)
                else:
                    Xtr = np.stack([X_all[q] for q in fit.queries])
                    Q, C = BASELINES[fam](fit, Xtr, Xte, seed)
                value = _aiq_of_choices(sweep(Q, C, LAMBDA_GRID, c_ref), test, max_cost)
            row[f"{share:g}"] = value
            print(
                f"{name} seed {seed} {fam:14s} share {share:4.2f} AIQ {value:.4f} "
                f"({time.perf_counter() - t0:.0f}s)",
                flush=True,
            )
        out["families"][fam] = row
    return out


def summarise(result: dict, lo: str, hi: str) -> dict:
    """Per data set and family: relative gain (%) of share ``hi`` over ``lo``, mean ± s.e."""
    summary: dict = {}
    for name, per_seed in result.items():
        summary[name] = {}
        fams = next(iter(per_seed.values()))["families"]
        for fam in fams:
            a = np.array([r["families"][fam][lo] for r in per_seed.values()])
            b = np.array([r["families"][fam][hi] for r in per_seed.values()])
            rel = 100 * (b - a) / a
            pts = 100 * (b - a)
            se = float(rel.std(ddof=1) / np.sqrt(len(rel))) if len(rel) > 1 else float("nan")
            summary[name][fam] = {
                f"aiq_{lo}": float(a.mean()),
                f"aiq_{hi}": float(b.mean()),
                "gain_points_mean": float(pts.mean()),
                "gain_rel_pct_per_seed": rel.round(3).tolist(),
                "gain_rel_pct_mean": float(rel.mean()),
                "gain_rel_pct_se": se,
                "seeds_reaching_2.22pct": int((rel >= 2.22).sum()),
            }
    return summary


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", nargs="+", default=list(DATA))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--families", nargs="+", default=FAMILIES)
    p.add_argument("--shares", nargs="+", type=float, default=[0.3, 1.0])
    p.add_argument("--out", default="ceiling-families.json")
    args = p.parse_args()
    shares = sorted(set(args.shares) | {0.3, 1.0})
    result = {
        name: {s: run(name, s, args.families, shares) for s in args.seeds} for name in args.data
    }
    summary = summarise(result, "0.3", "1")
    print(f"\nAIQ trained on 30% vs on every training row (full information); seeds {args.seeds}")
    print(
        f"{'data':12s} {'family':14s} {'AIQ 30%':>8s} {'AIQ 100%':>8s} {'pts':>6s} "
        f"{'rel % ± s.e.':>14s} {'>=2.22%':>7s}"
    )
    for name, fams in summary.items():
        for fam, s in fams.items():
            print(
                f"{name:12s} {fam:14s} {s['aiq_0.3']:8.4f} {s['aiq_1']:8.4f} "
                f"{s['gain_points_mean']:+6.2f} {s['gain_rel_pct_mean']:+7.2f} ± "
                f"{s['gain_rel_pct_se']:<5.2f} {s['seeds_reaching_2.22pct']:>4d}/{len(args.seeds)}"
            )
    Path(args.out).write_text(
        json.dumps({"seeds": args.seeds, "per_seed": result, "summary": summary}, indent=1)
    )


if __name__ == "__main__":
    main()
