"""Off-policy training measured: a bandit log made from RouterBench, and learning curves.

The training rows of a seeded split become a bandit log: each query is answered by one LLM,
drawn by a logged policy (``uniform``: every LLM with probability 1/m; ``epsilon``: the choice of
a router fit on 30% of the rows at λ = 5, or with probability ε a uniform draw), with its
propensity. Routers are then trained from the log (IPS-weighted, the default, and naive:
propensities dropped) and scored by AIQ on the test rows, against the full-information router
trained on every (query, LLM) pair of the same rows.

Learning curves: AIQ against the number of logged feedback rows trained on, for a cold start (the
log alone), an offline start (30% of the rows with full information, then the log of the rest)
and a newly added LLM (the offline start without it; it is known from the log only).

    python benchmarks/learning_curves.py --out docs/guide/learning-curves.png

writes the PNG and a JSON beside it, and prints the tables.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from mixllm_core import MixLLMRouter, RoutingData
from mixllm_core.data import load_routing_data
from mixllm_core.encoders import StaticEncoder
from mixllm_core.experiments.bench import LAMBDA_GRID
from mixllm_core.experiments.replay import aiq_on, split_offline_stream

ROUTERBENCH = "../shared/data/routerbench_subset/routerbench_arc_mbpp_winogrande.parquet"
NEW_LLM = "zero-one-ai/Yi-34B-Chat"


def score(router: MixLLMRouter, test: RoutingData) -> float:
    """AIQ of ``router`` on the test rows over the λ grid."""
    return aiq_on(router, test, LAMBDA_GRID)


def bandit_log(
    rows: RoutingData, policy: str, seed: int, *, teacher: MixLLMRouter | None = None
) -> RoutingData:
    """``rows`` with one LLM per query drawn by ``policy``, and its propensity."""
    n, m = rows.quality.shape
    rng = np.random.default_rng(seed)
    if policy == "uniform":
        probs = np.full((n, m), 1.0 / m)
    else:
        if teacher is None:
            raise ValueError("the epsilon policy needs a teacher router")
        eps = float(policy.split(":")[1])
        best = [rows.llms.index(d.llm) for d in teacher.route_batch(rows.queries, lam=5.0)]
        probs = np.full((n, m), eps / m)
        probs[np.arange(n), best] += 1 - eps
    chosen = np.array([rng.choice(m, p=p) for p in probs])
    observed = np.zeros((n, m), bool)
    observed[np.arange(n), chosen] = True
    propensity = np.where(observed, probs, np.nan)
    return RoutingData(
        rows.queries,
        rows.llms,
        rows.quality,
        cost=rows.cost,
        sample_ids=rows.sample_ids,
        specs=rows.specs,
        source="bandit",
        observed=observed,
        propensity=propensity,
    )


def naive(log: RoutingData) -> RoutingData:
    """The same log with its propensities dropped (every row weighs 1)."""
    return RoutingData(
        log.queries,
        log.llms,
        log.quality,
        cost=log.cost,
        sample_ids=log.sample_ids,
        specs=log.specs,
        source=log.source,
        observed=log.observed,
    )


def fit(data: RoutingData, seed: int) -> MixLLMRouter:
    return MixLLMRouter(encoder=StaticEncoder(), seed=seed).fit(data)


def offpolicy_table(train: RoutingData, test: RoutingData, seed: int) -> dict[str, Any]:
    offline, _ = split_offline_stream(train, 0.3, seed)
    teacher = fit(offline, seed)
    out: dict[str, Any] = {"full information": score(fit(train, seed), test)}
    for policy in ("uniform", "epsilon:0.2"):
        log = bandit_log(train, policy, seed, teacher=teacher)
        out[f"{policy} IPS"] = score(fit(log, seed), test)
        out[f"{policy} naive"] = score(fit(naive(log), seed), test)
    return out


def curves(
    train: RoutingData, test: RoutingData, seed: int, counts: list[int]
) -> dict[str, list[float]]:
    offline, stream = split_offline_stream(train, 0.3, seed)
    log = bandit_log(stream, "uniform", seed)
    others = [n for n in train.llms if n != NEW_LLM]
    out: dict[str, list[float]] = {"cold start": [], "offline start": [], "new LLM": []}
    for k in counts:
        part = log.subset(np.arange(min(k, len(log))))
        out["cold start"].append(score(fit(part, seed), test) if k >= 50 else float("nan"))
        out["offline start"].append(score(fit(offline.concat(part), seed), test))
        if k == 0:  # known by its price only
            router = fit(offline.select_llms(others), seed)
            router.add_llm(train.specs.get(NEW_LLM) or NEW_LLM)
            out["new LLM"].append(score(router, test))
        else:
            out["new LLM"].append(score(fit(offline.select_llms(others).concat(part), seed), test))
    return out


def plot(path: Path, counts: list[int], result: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, ys in result["curves"].items():
        ax.plot(counts, ys, marker="o", label=name)
    ax.axhline(result["offpolicy"]["full information"], ls="--", c="gray", label="full info")
    ax.set_xscale("symlog", linthresh=50)
    ax.set_xlim(left=0)
    ax.set_xlabel("logged feedback rows (one LLM per query, uniform logging policy)")
    ax.set_ylabel("AIQ on test rows")
    ax.set_title("RouterBench subset: learning from partial feedback")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=ROUTERBENCH)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--counts", nargs="+", type=int, default=[0, 100, 300, 600, 1234])
    p.add_argument("--out", default="docs/guide/learning-curves.png")
    args = p.parse_args()
    data = load_routing_data(args.data)
    train, test = data.train_test_split(seed=args.seed)
    result = {
        "data": args.data,
        "seed": args.seed,
        "counts": args.counts,
        "offpolicy": offpolicy_table(train, test, args.seed),
        "curves": curves(train, test, args.seed, args.counts),
    }
    for name, value in result["offpolicy"].items():
        print(f"{name:24s} AIQ {value:.4f}")
    print("rows   " + "  ".join(f"{n:>13s}" for n in result["curves"]))
    for i, k in enumerate(args.counts):
        print(f"{k:5d}  " + "  ".join(f"{v[i]:13.4f}" for v in result["curves"].values()))
    out = Path(args.out)
    plot(out, args.counts, result)
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    print(f"wrote {out} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
