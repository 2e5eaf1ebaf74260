"""Repeated, task-stratified K-fold CV of per-query quality predictors (AIQ of the routed traffic).

Every fold fits the default router (static encoder adapted to the fold's training queries,
token-based cost model) and then swaps in each candidate quality predictor, so the candidates
share the representation, the predicted costs and the λ sweep. Folds are stratified by task and
keep identical query texts together (a repeat is never in both halves), so the memory variants
get no credit for verbatim repeats here; the held-out nim test shares 119 of 500 questions with
train, where they would gain more.

    python benchmarks/quality_cv.py --data rb --folds 5 --repeats 2 --out /tmp/cv-rb.json
    python benchmarks/quality_cv.py --data nim --folds 5 --repeats 2 --out /tmp/cv-nim.json

Prints mean ± standard error of AIQ per variant and the paired difference to ``linear``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mixllm_core import MixLLMRouter
from mixllm_core.data import RoutingData, load_routing_data
from mixllm_core.experiments.bench import LAMBDA_GRID
from mixllm_core.experiments.replay import choose_indices
from mixllm_core.metrics import aiq, quality_at_cost
from mixllm_core.predictors import CostPredictor, QualityPredictor

DATA = {
    "rb": ("../shared/data/routerbench_subset/routerbench_arc_mbpp_winogrande.parquet", None),
    "nim": (
        "../shared/data/llmrouter_nim/llmrouter_dcrouter_scores.parquet",
        "llama-3.1-nemotron-51b-instruct",
    ),
}

Variant = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def memory_blend(
    Q_param: np.ndarray,
    Xtr: np.ndarray,
    Ytr: np.ndarray,
    Xte: np.ndarray,
    *,
    k: int = 10,
    tau: float = 0.05,
    kappa: float = 1.0,
) -> np.ndarray:
    """Blend of the parametric prediction and the observed outcomes of the most similar seen
    queries: weight ``exp((cos − 1) / tau)`` per neighbour (1 for an exact repeat), the memory
    counts as ``n_eff = Σ weights`` observations against ``kappa`` for the parametric model."""
    S = _unit(Xte) @ _unit(Xtr).T
    idx = np.argpartition(-S, k - 1, axis=1)[:, :k]
    s = np.take_along_axis(S, idx, axis=1)
    w = np.exp((np.minimum(s, 1.0) - 1.0) / tau)
    n_eff = w.sum(1, keepdims=True)
    mem = np.einsum("nk,nkm->nm", w, Ytr[idx]) / np.maximum(n_eff, 1e-12)
    return (n_eff * mem + kappa * Q_param) / (n_eff + kappa)


def per_llm(kind: str, **params: object) -> Variant:
    def run(Xtr: np.ndarray, Ytr: np.ndarray, Xte: np.ndarray, Q_lin: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [
                QualityPredictor(kind, **params).fit(Xtr, Ytr[:, j]).predict(Xte)
                for j in range(Ytr.shape[1])
            ]  # type: ignore[arg-type]
        )

    return run


def joint_mlp(hidden: int = 64, alpha: float = 1e-3, heads: bool = False) -> Variant:
    """A shared hidden layer for all LLMs (query difficulty and type shared across LLMs); with
    ``heads``, per-LLM logistic heads on the fixed hidden features (a new LLM adds a head)."""

    def run(Xtr: np.ndarray, Ytr: np.ndarray, Xte: np.ndarray, Q_lin: np.ndarray) -> np.ndarray:
        from sklearn.neural_network import MLPRegressor

        mlp = MLPRegressor(
            hidden_layer_sizes=(hidden,),
            alpha=alpha,
            max_iter=300,
            early_stopping=True,
            random_state=0,
        ).fit(Xtr, Ytr)
        if not heads:
            return np.clip(mlp.predict(Xte), 0, 1)

        def hid(X: np.ndarray) -> np.ndarray:
            return np.maximum(X @ mlp.coefs_[0] + mlp.intercepts_[0], 0.0)

        Ztr, Zte = np.hstack([Xtr, hid(Xtr)]), np.hstack([Xte, hid(Xte)])
        return np.column_stack(
            [
                QualityPredictor("linear").fit(Ztr, Ytr[:, j]).predict(Zte)
                for j in range(Ytr.shape[1])
            ]
        )

    return run


def isotonic(Xtr: np.ndarray, Ytr: np.ndarray, Xte: np.ndarray, Q_lin: np.ndarray) -> np.ndarray:
    """Per-LLM isotonic calibration of the linear model's probabilities, fit on 5-fold
    out-of-fold predictions of the training rows."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.model_selection import KFold

    out = np.empty_like(Q_lin)
    for j in range(Ytr.shape[1]):
        oof = np.empty(len(Xtr))
        for a, b in KFold(5, shuffle=True, random_state=0).split(Xtr):
            oof[b] = QualityPredictor("linear").fit(Xtr[a], Ytr[a, j]).predict(Xtr[b])
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(oof, Ytr[:, j])
        out[:, j] = iso.predict(Q_lin[:, j])
    return out


_OOF: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _oof(Xtr: np.ndarray, Ytr: np.ndarray, inner: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold linear and KNN predictions of the training rows (inner folds; cached per
    outer fold)."""
    from sklearn.model_selection import KFold

    key = id(Xtr)
    if key not in _OOF:
        lin, knn = np.empty_like(Ytr), np.empty_like(Ytr)
        for a, b in KFold(inner, shuffle=True, random_state=0).split(Xtr):
            for j in range(Ytr.shape[1]):
                lin[b, j] = QualityPredictor("linear").fit(Xtr[a], Ytr[a, j]).predict(Xtr[b])
                knn[b, j] = QualityPredictor("knn").fit(Xtr[a], Ytr[a, j]).predict(Xtr[b])
        _OOF.clear()
        _OOF[key] = (lin, knn)
    return _OOF[key]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _weighted_logistic(Z: np.ndarray, y: np.ndarray, Zte: np.ndarray) -> np.ndarray:
    """Logistic regression of fractional ``y`` on ``Z`` (rows twice, weighted y and 1 − y)."""
    from sklearn.linear_model import LogisticRegression

    y = np.clip(y, 0, 1)
    if np.unique(y).size < 2:
        return np.full(len(Zte), y.mean())
    lr = LogisticRegression(C=10.0, max_iter=1000).fit(
        np.vstack([Z, Z]), np.r_[np.ones(len(y)), np.zeros(len(y))], sample_weight=np.r_[y, 1 - y]
    )
    return lr.predict_proba(Zte)[:, 1]  # type: ignore[no-any-return]


def platt(Xtr: np.ndarray, Ytr: np.ndarray, Xte: np.ndarray, Q_lin: np.ndarray) -> np.ndarray:
    """Per-LLM Platt scaling of the linear model, fit on out-of-fold predictions."""
    lin, _ = _oof(Xtr, Ytr)
    return np.column_stack(
        [
            _weighted_logistic(_logit(lin[:, [j]]), Ytr[:, j], _logit(Q_lin[:, [j]]))
            for j in range(Ytr.shape[1])
        ]
    )


def isotonic_oof(
    Xtr: np.ndarray, Ytr: np.ndarray, Xte: np.ndarray, Q_lin: np.ndarray
) -> np.ndarray:
    from sklearn.isotonic import IsotonicRegression

    lin, _ = _oof(Xtr, Ytr)
    return np.column_stack(
        [
            IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)
            .fit(lin[:, j], Ytr[:, j])
            .predict(Q_lin[:, j])
            for j in range(Ytr.shape[1])
        ]
    )


def stack(Xtr: np.ndarray, Ytr: np.ndarray, Xte: np.ndarray, Q_lin: np.ndarray) -> np.ndarray:
    """Per-LLM logistic stack of the linear and KNN predictions, weights fit out of fold."""
    lin, knn = _oof(Xtr, Ytr)
    Q_knn = per_llm("knn")(Xtr, Ytr, Xte, Q_lin)
    return np.column_stack(
        [
            _weighted_logistic(
                np.c_[_logit(lin[:, j]), _logit(knn[:, j])],
                Ytr[:, j],
                np.c_[_logit(Q_lin[:, j]), _logit(Q_knn[:, j])],
            )
            for j in range(Ytr.shape[1])
        ]
    )


def knn_bench(Xtr: np.ndarray, Ytr: np.ndarray, Xte: np.ndarray, Q_lin: np.ndarray) -> np.ndarray:
    from sklearn.neighbors import KNeighborsRegressor

    return KNeighborsRegressor(n_neighbors=min(40, len(Xtr))).fit(Xtr, Ytr).predict(Xte)  # type: ignore[no-any-return]


def variants(names: list[str]) -> dict[str, Variant]:
    all_: dict[str, Variant] = {
        "linear": lambda Xtr, Ytr, Xte, Q: Q,
        "knn": per_llm("knn"),
        "knn40-bench": knn_bench,
        "mlp": per_llm("mlp"),
        "isotonic": isotonic,
        "avg-linear-knn": lambda Xtr, Ytr, Xte, Q: 0.5 * (Q + per_llm("knn")(Xtr, Ytr, Xte, Q)),
        "joint-mlp": joint_mlp(),
        "joint-heads": joint_mlp(heads=True),
        "platt": platt,
        "isotonic-oof": isotonic_oof,
        "stack-linear-knn": stack,
    }
    for tau in (0.002, 0.01, 0.03):
        for kappa in (1.0,):
            all_[f"memory-t{tau}-k{kappa:g}"] = lambda Xtr, Ytr, Xte, Q, tau=tau, kappa=kappa: (
                memory_blend(Q, Xtr, Ytr, Xte, tau=tau, kappa=kappa)
            )
    return {n: all_[n] for n in names} if names else all_


def folds(
    data: RoutingData, k: int, repeat: int, grouped: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    tasks = data.tasks or ["all"] * len(data)
    if not grouped:  # verbatim repeats may fall on both sides, as in real traffic
        plain = StratifiedKFold(n_splits=k, shuffle=True, random_state=repeat)
        return list(plain.split(np.zeros(len(data)), tasks))
    groups = {q: i for i, q in enumerate(dict.fromkeys(data.queries))}
    g = np.array([groups[q] for q in data.queries])
    cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=repeat)
    return list(cv.split(np.zeros(len(data)), tasks, g))


def score(
    router: MixLLMRouter, Q: np.ndarray, C: np.ndarray, test: RoutingData, ref: int
) -> dict[str, float]:
    rows = np.arange(len(test))
    cost = test.cost if test.cost is not None else np.zeros_like(test.quality)
    c_ref = router.c_ref()
    pts = [choose_indices(router, Q, C, lam, c_ref) for lam in LAMBDA_GRID]
    costs = [float(cost[rows, i].mean()) for i in pts]
    quals = [float(test.quality[rows, i].mean()) for i in pts]
    ref_cost, ref_q = float(cost[:, ref].mean()), float(test.quality[:, ref].mean())
    return {
        "aiq": aiq(costs, quals, float(cost.mean(0).max())),
        "q25": 100 * quality_at_cost(costs, quals, 0.25 * ref_cost) / ref_q,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", choices=list(DATA), required=True)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--variants", nargs="*", default=[])
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-groups", action="store_true", help="let verbatim repeats cross folds")
    args = ap.parse_args()
    path, reference = DATA[args.data]
    data = load_routing_data(path)
    data = data.subset(np.arange(len(data)))  # all train rows
    ref = data.llms.index(reference) if reference else int(np.argmax(data.mean_cost()))
    vs = variants(args.variants)
    results: dict[str, list[dict[str, float]]] = {n: [] for n in vs}
    results["linear/old-cost"] = []
    times: dict[str, float] = {n: 0.0 for n in results}
    for r in range(args.repeats):
        for f, (tr, te) in enumerate(folds(data, args.folds, r, not args.no_groups)):
            train, test = data.subset(tr), data.subset(te)
            router = MixLLMRouter(seed=r).fit(train)
            Xtr, Ftr = router.features(train.queries)
            Xte, Fte = router.features(test.queries)
            names, Q_lin, C, _ = router.predict_features(Xte, Fte)
            assert names == data.llms
            for name, fn in vs.items():
                t0 = time.perf_counter()
                Q = fn(Xtr, train.quality, Xte, Q_lin)
                times[name] += time.perf_counter() - t0
                results[name].append(score(router, Q, C, test, ref))
            if train.cost is not None:
                C_old = np.column_stack(
                    [
                        CostPredictor("regress").fit(Ftr, train.cost[:, j]).predict(Fte)
                        for j in range(len(data.llms))
                    ]
                )
                results["linear/old-cost"].append(score(router, Q_lin, C_old, test, ref))
            line = "  ".join(f"{n}={results[n][-1]['aiq']:.4f}" for n in results if results[n])
            print(f"[{args.data} r{r} f{f}] {line}", flush=True)
    table = {}
    base = np.array([x["aiq"] for x in results["linear"]]) if "linear" in results else None
    for name, rows in results.items():
        if not rows:
            continue
        a = np.array([x["aiq"] for x in rows])
        q = np.array([x["q25"] for x in rows])
        se = a.std(ddof=1) / np.sqrt(len(a))
        row = {
            "aiq": a.mean(),
            "aiq_se": se,
            "q25": q.mean(),
            "q25_se": q.std(ddof=1) / np.sqrt(len(q)),
        }
        if base is not None and len(base) == len(a):
            d = a - base
            row |= {"diff": d.mean(), "diff_se": d.std(ddof=1) / np.sqrt(len(d))}
        row["fit_predict_s"] = times.get(name, 0.0) / max(len(a), 1)
        table[name] = row
    print(f"\n{args.data}: {args.folds}-fold × {args.repeats}, n={len(data)}")
    print(f"{'variant':24s} {'AIQ':>16s} {'Δ vs linear':>18s} {'%ref@25%':>14s} {'s/fold':>7s}")
    for name, row in table.items():
        diff = f"{row['diff']:+.4f} ± {row['diff_se']:.4f}" if "diff" in row else ""
        print(
            f"{name:24s} {row['aiq']:.4f} ± {row['aiq_se']:.4f} {diff:>18s} "
            f"{row['q25']:6.2f} ± {row['q25_se']:.2f} {row['fit_predict_s']:7.1f}"
        )
    if args.out:
        Path(args.out).write_text(json.dumps({"table": table, "folds": results}, indent=1))


if __name__ == "__main__":
    main()
