"""Prototype: share strength across LLMs when each LLM has only its logged rows (bandit log).

A pooled "difficulty" model is a logistic regression fit on every logged (query, LLM) row of all
LLMs, on the query features plus a per-LLM intercept (IPS-weighted as the per-LLM fits are); its
query part is ``s(x) = x · w0``. Each LLM's logistic regression then uses it in one of two ways:

- ``feature``: ``s(x)``, standardised and multiplied by ``boost`` (so its coefficient is barely
  regularised), is one more feature: the LLM learns ``c_j · s(x) + x · w_j + b_j``;
- ``offset``: pooled plus a ridge-shrunk correction, ``s(x) + x · δ_j + b_j`` (scipy L-BFGS, the
  same ``C`` as scikit-learn's).

Both are linear in ``x`` again (folded into one coefficient vector), so the router's bank,
persistence and heads see a plain logistic model; the script swaps them into a fitted router.
``pooled only``: the pooled slope with a per-LLM intercept and scale. References in the same
run: ``per-LLM`` (the library's default), ``per-LLM C=2`` (the same independent models, 4× less
regularised) and ``per-LLM CV C`` (each LLM's ``C`` chosen by 3-fold CV of its own rows).

    OMP_NUM_THREADS=1 python benchmarks/shared_quality.py --data rb --seeds 0 1 2
    OMP_NUM_THREADS=1 python benchmarks/shared_quality.py --data nim --seeds 0

Prints AIQ per training set and variant and its gap to full information (points); ``--quick``
runs the uniform log only; ``--graft`` scores the uniform log's router with the full-information
router's quality (or cost) predictors swapped in: where the loss is.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from learning_curves import bandit_log, fit, naive, score  # noqa: E402

from mixllm_core import MixLLMRouter, RoutingData  # noqa: E402
from mixllm_core.data import load_routing_data  # noqa: E402
from mixllm_core.experiments.replay import split_offline_stream  # noqa: E402
from mixllm_core.offpolicy import ips_weights  # noqa: E402
from mixllm_core.predictors import QualityPredictor  # noqa: E402
from mixllm_core.snapshot import RoutingModel  # noqa: E402

DATA = {
    "rb": "../shared/data/routerbench_subset/routerbench_arc_mbpp_winogrande.parquet",
    "nim": "../shared/data/llmrouter_nim/llmrouter_dcrouter_scores.parquet",
}


def logistic(X: np.ndarray, y: np.ndarray, w: np.ndarray, C: float) -> tuple[np.ndarray, float]:
    """Weighted logistic regression on scores in [0, 1] (fractional: success and failure rows)."""
    from sklearn.linear_model import LogisticRegression

    p = np.clip(y, 0.0, 1.0)
    est = LogisticRegression(C=C, max_iter=3000).fit(
        np.vstack([X, X]),
        np.r_[np.ones(len(p)), np.zeros(len(p))],
        sample_weight=np.r_[w * p, w * (1 - p)],
    )
    return est.coef_.ravel().copy(), float(est.intercept_[0])


def offset_logistic(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, offset: np.ndarray, C: float
) -> tuple[np.ndarray, float]:
    """Weighted logistic regression with a fixed ``offset`` in the logit: ridge on the
    correction ``delta`` (not on the intercept), as sklearn's ``C`` (``0.5‖δ‖² + C Σ loss``)."""
    from scipy.optimize import minimize

    p = np.clip(y, 0.0, 1.0)
    d = X.shape[1]

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = offset + X @ theta[:d] + theta[d]
        lp, lq = -np.logaddexp(0, -z), -np.logaddexp(0, z)  # log σ(z), log σ(−z)
        loss = -np.sum(w * (p * lp + (1 - p) * lq))
        r = w * (1 / (1 + np.exp(-z)) - p)
        grad = np.r_[C * (X.T @ r) + theta[:d], C * r.sum()]
        return C * loss + 0.5 * theta[:d] @ theta[:d], grad

    res = minimize(f, np.zeros(d + 1), jac=True, method="L-BFGS-B", options={"maxiter": 3000})
    return res.x[:d], float(res.x[d])


def cv_C(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, grid: tuple[float, ...], seed: int = 0
) -> float:
    """The ``C`` of ``grid`` with the least weighted held-out log loss (3-fold CV on the rows)."""
    folds = np.random.default_rng(seed).permutation(len(y)) % 3
    p = np.clip(y, 1e-6, 1 - 1e-6)
    losses = []
    for C in grid:
        total = 0.0
        for k in range(3):
            tr, te = folds != k, folds == k
            coef, b = logistic(X[tr], y[tr], w[tr], C)
            z = X[te] @ coef + b
            ll = p[te] * np.logaddexp(0, -z) + (1 - p[te]) * np.logaddexp(0, z)
            total += float(w[te] @ ll)
        losses.append(total)
    return grid[int(np.argmin(losses))]


def rows_of(data: RoutingData, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Observed rows of LLM ``j`` and their weights (IPS when the data has propensities)."""
    rows = data.observed_rows(data.llms[j]) if not data.is_complete else np.arange(len(data))
    w = np.ones(len(rows)) if data.propensity is None else ips_weights(data.propensity[rows, j])
    return rows, w


def pooled(X: np.ndarray, data: RoutingData, C: float, boost: float) -> np.ndarray:
    """Query part ``w0`` of the pooled model (per-LLM intercepts as boosted one-hot columns)."""
    m = len(data.llms)
    Xs, ys, ws, hots = [], [], [], []
    for j in range(m):
        rows, w = rows_of(data, j)
        Xs.append(X[rows])
        ys.append(data.quality[rows, j])
        ws.append(w)
        hot = np.zeros((len(rows), m))
        hot[:, j] = boost
        hots.append(hot)
    coef, _ = logistic(
        np.hstack([np.vstack(Xs), np.vstack(hots)]), np.concatenate(ys), np.concatenate(ws), C
    )
    return coef[: X.shape[1]], coef[X.shape[1] :] * boost


def shared_quality(
    X: np.ndarray, data: RoutingData, *, C: float = 0.5, boost: float = 10.0, mode: str = "feature"
) -> list[tuple[np.ndarray, float]]:
    """Per-LLM (coef on X, intercept) with the pooled difficulty shared."""
    if mode == "indep":
        return [
            logistic(X[r], data.quality[r, j], w, C)
            for j, (r, w) in enumerate(rows_of(data, j) for j in range(len(data.llms)))
        ]
    if mode == "indep-cv":  # each LLM's C chosen by cross-validation on its own rows
        out = []
        for j in range(len(data.llms)):
            r, w = rows_of(data, j)
            y = data.quality[r, j]
            out.append(logistic(X[r], y, w, cv_C(X[r], y, w, (0.25, 0.5, 1.0, 2.0, 4.0, 8.0))))
        return out
    if mode.startswith("lowrank"):
        r = int(mode[7:])
        W = np.column_stack(
            [
                logistic(X[rr], data.quality[rr, j], w, C)[0]
                for j, (rr, w) in enumerate(rows_of(data, j) for j in range(len(data.llms)))
            ]
        )
        U = np.linalg.svd(W, full_matrices=False)[0][:, :r]
        S = X @ U
        sd = S.std(0) + 1e-12
        out = []
        for j in range(len(data.llms)):
            rows, w = rows_of(data, j)
            Z = np.hstack([X[rows], S[rows] / sd * boost])
            coef, b = logistic(Z, data.quality[rows, j], w, C)
            out.append((coef[: X.shape[1]] + U @ (coef[X.shape[1] :] * boost / sd), b))
        return out
    w0, b0 = pooled(X, data, C, boost)
    s = X @ w0
    if mode == "offset":  # pooled + ridge-shrunk per-LLM correction
        out = []
        for j in range(len(data.llms)):
            rows, w = rows_of(data, j)
            delta, b = offset_logistic(X[rows], data.quality[rows, j], w, s[rows], C)
            out.append((w0 + delta, b))
        return out
    mu, sd = float(s.mean()), float(s.std()) or 1.0
    out = []
    for j in range(len(data.llms)):
        rows, w = rows_of(data, j)
        y = data.quality[rows, j]
        if mode == "pooled":  # the pooled slope, only the intercept per LLM (and its scale)
            z = ((s[rows] - mu) / sd)[:, None] * boost
            coef, b = logistic(z, y, w, C)
            c = coef[0] * boost / sd
            out.append((c * w0, b - c * mu))
            continue
        Z = np.hstack([X[rows], ((s[rows] - mu) / sd)[:, None] * boost])
        coef, b = logistic(Z, y, w, C)
        c = coef[-1] * boost / sd
        out.append((coef[:-1] + c * w0, b - c * mu))
    return out


def swap(router: MixLLMRouter, data: RoutingData, **kw: Any) -> MixLLMRouter:
    """``router`` with its quality predictors replaced by the shared variant's."""
    from sklearn.linear_model import LogisticRegression

    X, _ = router.features(data.queries)
    models = shared_quality(X, data, **kw)
    quality = {}
    for name, (coef, b) in zip(data.llms, models):
        old = router.model.pool.quality[name]
        est = LogisticRegression(C=0.5)
        est.coef_, est.intercept_ = coef[None, :].astype(float), np.array([b])
        est.classes_, est.n_features_in_ = np.array([0, 1]), X.shape[1]
        new = QualityPredictor("linear")
        new.mean_, new.n_samples_, new.n_features_in_ = old.mean_, old.n_samples_, X.shape[1]
        new.estimator_, new.train_fingerprint_ = est, ""
        quality[name] = new
    model = router.model
    pool = dataclasses.replace(model.pool, quality=quality)
    router._model = RoutingModel(pool, model.heads, model.feedback_seq, model.memory)
    return router


VARIANTS: dict[str, dict[str, Any]] = {
    "shared (feature)": {"mode": "feature", "boost": 10.0},
    "shared (offset)": {"mode": "offset"},
    "shared (feature) C=2": {"mode": "feature", "boost": 10.0, "C": 2.0},
    "per-LLM C=2": {"mode": "indep", "C": 2.0},
    "per-LLM CV C": {"mode": "indep-cv"},
    "pooled only": {"mode": "pooled", "boost": 10.0},
}


def quick(
    train: RoutingData, test: RoutingData, seed: int, variants: dict[str, dict[str, Any]]
) -> dict[str, float]:
    out = {"full information": score(fit(train, seed), test)}
    for name in variants:
        out[f"full {name}"] = score(swap(fit(train, seed), train, **VARIANTS[name]), test)
    log = bandit_log(train, "uniform", seed)
    out["uniform per-LLM"] = score(fit(log, seed), test)
    for name, kw in variants.items():
        out[f"uniform {name}"] = score(swap(fit(log, seed), log, **kw), test)
    return out


def graft(
    train: RoutingData, test: RoutingData, seed: int, variants: dict[str, dict[str, Any]]
) -> dict[str, float]:
    """Where the uniform log's loss is: its router with the full-information router's quality
    predictors (or cost predictors) swapped in."""
    full, log = fit(train, seed), bandit_log(train, "uniform", seed)
    out = {"full information": score(full, test), "uniform per-LLM": score(fit(log, seed), test)}
    for part in ("quality", "cost"):
        router = fit(log, seed)
        model = router.model
        pool = dataclasses.replace(model.pool, **{part: dict(getattr(full.model.pool, part))})
        router._model = RoutingModel(pool, model.heads, model.feedback_seq, model.memory)
        out[f"uniform, full-information {part}"] = score(router, test)
    return out


def table(
    train: RoutingData, test: RoutingData, seed: int, variants: dict[str, dict[str, Any]]
) -> dict[str, float]:
    offline, _ = split_offline_stream(train, 0.3, seed)
    teacher = fit(offline, seed)
    full = fit(train, seed)
    out = {"full information": score(full, test)}
    for name, kw in variants.items():
        out[f"full {name}"] = score(swap(fit(train, seed), train, **kw), test)
    for policy in ("uniform", "epsilon:0.2"):
        log = bandit_log(train, policy, seed, teacher=teacher)
        for label, d in (("IPS", log), ("naive", naive(log))):
            base = fit(d, seed)
            out[f"{policy} {label} per-LLM"] = score(base, test)
            for name, kw in variants.items():
                out[f"{policy} {label} {name}"] = score(swap(fit(d, seed), d, **kw), test)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", choices=list(DATA), default="rb")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--out", default=None)
    p.add_argument("--quick", action="store_true", help="the uniform log only")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    p.add_argument("--graft", action="store_true", help="swap full-information predictors in")
    args = p.parse_args()
    data = load_routing_data(DATA[args.data])
    run = graft if args.graft else quick if args.quick else table
    res = {}
    for seed in args.seeds:
        train, test = data.train_test_split(seed=seed)
        res[seed] = t = run(train, test, seed, {v: VARIANTS[v] for v in args.variants})
        full = t["full information"]
        for k, v in t.items():
            print(f"[{args.data} s{seed}] {k:34s} {v:.4f} {100 * (v - full):+6.2f}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
