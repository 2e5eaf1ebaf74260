"""The full-information ceiling of the continual-learning replay, per router family.

The replay fits on 30% of the training rows and streams the other 70% with feedback for the
chosen LLM only. No feedback can tell a router more than every LLM's score on the streamed rows,
i.e. all the training rows: a router fit on 100% of them is the ceiling of what the stream can
add. Per data set, split seed and router family this script fits once on the replay's 30%
(``split_offline_stream``, as ``replay_seeds.py``) and once on every training row (other shares
with ``--shares``), and scores AIQ on the test rows over the bench's λ grid.

Families: ``mixllm`` (the replay's router: ``StaticEncoder``, as ``replay_seeds.py``),
``mixllm-default`` (``MixLLMRouter()``'s default encoder: static plus tag features, what
``mixllm bench`` fits by default), ``mixllm-sentence`` (MiniLM, plain: ``mixllm bench --encoder
minilm --embedding plain``), the bench's learned baselines (``experiments.baselines.BASELINES``:
knn, knn-cost, knn-cv, mlp, mf; on the MiniLM embedding, or with ``--features static`` on the
static one, reported as ``<family>@static``) and ``task-mean`` (each LLM's mean score and cost
per task of the training rows; it reads the test rows' task labels, which a deployed router does
not get: a reference, left out of ``best-of-families``). Baselines choose with the rule mixllm
uses (``baselines.sweep``), ``c_ref`` the largest mean training cost of the rows they were fit on
(what ``MixLLMRouter.c_ref`` is). Prints a table and writes JSON; ``--from-json A B`` merges the
families of several runs and prints their summary.

    OMP_NUM_THREADS=1 nice -n 10 env PYTHONPATH=. python benchmarks/ceiling_families.py \
        --data routerbench nim routerarena --seeds 0 1 2 3 4 --shares 0.3 0.65 1 --out ceiling.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from replay_seeds import DATA, make_router  # type: ignore[import-not-found]

from mixllm_core import MixLLMRouter
from mixllm_core.data import RoutingData, load_routing_data
from mixllm_core.encoders import StaticEncoder
from mixllm_core.experiments.baselines import BASELINES, sweep
from mixllm_core.experiments.bench import LAMBDA_GRID, adapt_to, cached_encoder
from mixllm_core.experiments.replay import aiq_on, split_offline_stream
from mixllm_core.metrics import aiq

FAMILIES = ["mixllm", "mixllm-default", "mixllm-sentence", *BASELINES, "task-mean"]


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


def _mixllm(fit: RoutingData, test: RoutingData, seed: int, family: str, max_cost: float, data):
    if family == "mixllm-sentence":  # ``mixllm bench --encoder minilm --embedding plain``
        router = MixLLMRouter(encoder=cached_encoder(data), seed=seed)
    else:  # the replay's routers: ``mixllm`` static, ``mixllm-default`` MixLLMRouter()
        router = make_router("default" if family == "mixllm-default" else "static", seed)
    router.policy = router.maker.policy = replace(router.policy, alpha=0.05)  # as replay_seeds
    router.fit(fit)
    return aiq_on(router, test, LAMBDA_GRID, max_cost)


def context(test: RoutingData, max_cost: float) -> dict:
    """AIQ of the best single LLM and of the oracle (each test row's best LLM, the cheapest among
    ties, as the bench's oracle), the oracle's hull taken with the single LLMs' points."""
    n = len(test)
    best = test.quality >= test.quality.max(axis=1, keepdims=True) - 1e-12
    singles = {j: np.full(n, j) for j in range(len(test.llms))}
    oracle = np.argmin(np.where(best, _cost(test), np.inf), axis=1)
    return {
        "best_single_aiq": max(_aiq_of_choices({0: c}, test, max_cost) for c in singles.values()),
        "oracle_aiq": _aiq_of_choices({**singles, -1: oracle}, test, max_cost),
        "oracle_quality": float(test.quality.max(axis=1).mean()),
    }


def run(
    name: str, seed: int, families: list[str], shares: list[float], features: str = "sentence"
) -> dict:
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
    if need_x:  # the bench's plain embedding: MiniLM (cached per data source) or static
        enc = cached_encoder(data) if features == "sentence" else StaticEncoder()
        adapt_to(enc, train.queries)  # as the bench: a corpus part from every training query
        X_all = {q: x for q, x in zip(train.queries, enc.encode(train.queries))}
        Xte = enc.encode(test.queries)
        if hasattr(enc, "save_cache"):
            enc.save_cache()
    out: dict = {**context(test, max_cost), "families": {}}
    for fam in families:
        row = {}
        for share, fit in fits.items():
            t0 = time.perf_counter()
            if fam.startswith("mixllm"):
                value = _mixllm(fit, test, seed, fam, max_cost, data)
            else:
                c_ref = float(_cost(fit).mean(axis=0).max()) or 1.0
                if fam == "task-mean":
                    Q, C = _task_mean(fit, test)
                else:
                    Xtr = np.stack([X_all[q] for q in fit.queries])
                    Q, C = BASELINES[fam](fit, Xtr, Xte, seed)
                value = _aiq_of_choices(sweep(Q, C, LAMBDA_GRID, c_ref), test, max_cost)
            row[f"{share:g}"] = value
            fam_key = fam if features == "sentence" or fam.startswith("mixllm") else f"{fam}@static"
            print(
                f"{name} seed {seed} {fam:14s} share {share:4.2f} AIQ {value:.4f} "
                f"({time.perf_counter() - t0:.0f}s)",
                flush=True,
            )
        out["families"][fam_key] = row
    return out


def summarise(result: dict, lo: str, hi: str, base: str = "mixllm") -> dict:
    """Per data set and family: gain of share ``hi`` over ``lo`` (AIQ points and relative %,
    mean ± s.e. over seeds), and the family's AIQ at ``hi`` relative to ``base`` at ``lo`` (the
    replay's no-feedback router); ``best-of-families``: per seed the best family at ``hi``."""
    summary: dict = {}

    def stats(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float, float]:
        rel = 100 * (b - a) / a
        se = float(rel.std(ddof=1) / np.sqrt(len(rel))) if len(rel) > 1 else float("nan")
        return rel, float(rel.mean()), se

    for name, per_seed in result.items():
        summary[name] = {}
        runs = list(per_seed.values())
        order = {f: i for i, f in enumerate(FAMILIES)}
        fams = sorted(runs[0]["families"], key=lambda f: (order.get(f.split("@")[0], 99), f))
        if base not in runs[0]["families"]:  # a run without the replay's router: no baseline
            none = np.full(len(runs), np.nan)
        else:
            none = np.array([r["families"][base][lo] for r in runs])
        for fam in [*fams, "best-of-families"]:
            if fam == "best-of-families":  # task-mean reads the test rows' task labels: left out
                routers = [f for f in fams if not f.startswith("task-mean")]
                b = np.array([max(r["families"][f][hi] for f in routers) for r in runs])
                a = np.array([max(r["families"][f][lo] for f in routers) for r in runs])
            else:
                a = np.array([r["families"][fam][lo] for r in runs])
                b = np.array([r["families"][fam][hi] for r in runs])
            rel, mean, se = stats(a, b)
            rel_base, mean_base, se_base = stats(none, b)
            shares = [k for k in runs[0]["families"].get(fam, {}) if k not in (lo, hi)]
            summary[name][fam] = {
                **{
                    f"aiq_{k}": float(np.mean([r["families"][fam][k] for r in runs]))
                    for k in shares
                },
                f"aiq_{lo}": float(a.mean()),
                f"aiq_{hi}": float(b.mean()),
                "gain_points_mean": float(100 * (b - a).mean()),
                "gain_rel_pct_per_seed": rel.round(3).tolist(),
                "gain_rel_pct_mean": mean,
                "gain_rel_pct_se": se,
                "seeds_reaching_2.22pct": int((rel >= 2.22).sum()),
                f"vs_{base}_{lo}_rel_pct_mean": mean_base,
                f"vs_{base}_{lo}_rel_pct_se": se_base,
            }
        summary[name]["_context"] = {
            f"{base}_aiq_{lo}": float(none.mean()),
            "best_single_aiq": float(np.mean([r["best_single_aiq"] for r in runs])),
            "oracle_aiq": float(np.mean([r["oracle_aiq"] for r in runs])),
        }
    return summary


def print_summary(summary: dict, seeds: list[int]) -> None:
    print(
        f"\nAIQ fit on the replay's 30% vs on every training row (full information); seeds {seeds}"
    )
    print(
        f"{'data':12s} {'family':16s} {'AIQ 30%':>8s} {'AIQ 100%':>8s} {'pts':>6s} "
        f"{'rel % ± s.e.':>14s} {'>=2.22%':>7s} {'100% vs mixllm 30%':>19s}"
    )
    for name, fams in summary.items():
        for fam, s in fams.items():
            if fam.startswith("_"):
                continue
            print(
                f"{name:12s} {fam:16s} {s['aiq_0.3']:8.4f} {s['aiq_1']:8.4f} "
                f"{s['gain_points_mean']:+6.2f} {s['gain_rel_pct_mean']:+7.2f} ± "
                f"{s['gain_rel_pct_se']:<5.2f} {s['seeds_reaching_2.22pct']:>4d}/{len(seeds)} "
                f"{s['vs_mixllm_0.3_rel_pct_mean']:+11.2f} ± {s['vs_mixllm_0.3_rel_pct_se']:.2f}"
            )
        c = fams["_context"]
        print(
            f"{name:12s} context: mixllm 30% {c['mixllm_aiq_0.3']:.4f}, best single LLM "
            f"{c['best_single_aiq']:.4f}, oracle {c['oracle_aiq']:.4f}"
        )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", nargs="+", default=list(DATA))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--families", nargs="+", default=FAMILIES)
    p.add_argument("--shares", nargs="+", type=float, default=[0.3, 1.0])
    p.add_argument(
        "--features",
        default="sentence",
        choices=["sentence", "static"],
        help="the baselines' query embedding: MiniLM (`bench --encoder minilm`) or the static "
        "encoder (`mixllm bench`'s default); static baselines are reported as `<family>@static`",
    )
    p.add_argument("--out", default="ceiling-families.json")
    p.add_argument(
        "--from-json",
        nargs="+",
        help="summarise earlier runs' JSON (their families merged; --out: the merged JSON)",
    )
    args = p.parse_args()
    if args.from_json:
        raws = [json.loads(Path(f).read_text()) for f in args.from_json]
        seeds, result = raws[0]["seeds"], raws[0]["per_seed"]
        for name, per_seed in result.items():
            data = load_routing_data(DATA[name])
            for s, r in per_seed.items():
                for raw in raws[1:]:
                    r["families"].update(
                        raw["per_seed"].get(name, {}).get(s, {}).get("families", {})
                    )
                test = data.train_test_split(seed=int(s))[1]
                r.update(context(test, float(_cost(test).mean(axis=0).max())))
    else:
        shares = sorted(set(args.shares) | {0.3, 1.0})
        seeds = args.seeds
        result = {
            name: {s: run(name, s, args.families, shares, args.features) for s in seeds}
            for name in args.data
        }
    write = not args.from_json or len(args.from_json) > 1
    if write:  # the measurements first: a summary that fails loses nothing
        Path(args.out).write_text(json.dumps({"seeds": seeds, "per_seed": result}, indent=1))
    summary = summarise(result, "0.3", "1")
    print_summary(summary, seeds)
    if write:
        Path(args.out).write_text(
            json.dumps({"seeds": seeds, "per_seed": result, "summary": summary}, indent=1)
        )


if __name__ == "__main__":
    main()
