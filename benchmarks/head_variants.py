"""Online-head variants measured fast: one logged ε-greedy stream per split, heads learned from it.

The replay (``benchmarks/replay_seeds.py``) streams 70% of the training rows through a router
fit on the other 30%; what feedback does to the final model is what its heads (and accepted
refits) hold. This script streams once per data set and seed with the offline router (ε = 0.2,
λ = 5, the replay's settings, no feedback applied), logs each choice with its propensity, then
learns every head variant from that log and scores AIQ on the test rows against no feedback. It
ignores that heads change later choices in a real stream (second order); the chosen variant is
checked with the replay itself.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/head_variants.py --out head-variants.json
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mixllm_core import MixLLMRouter
from mixllm_core.data import load_routing_data
from mixllm_core.encoders import StaticEncoder
from mixllm_core.experiments.bench import LAMBDA_GRID
from mixllm_core.experiments.replay import choose_indices, split_offline_stream
from mixllm_core.metrics import aiq

DATA = {
    "routerbench": "../shared/data/routerbench_subset/routerbench_arc_mbpp_winogrande.parquet",
    "nim": "../shared/data/llmrouter_nim/llmrouter_dcrouter_scores.parquet",
}


@dataclass
class Log:
    """One logged stream: per feedback the representation, LLM index, propensity, q̂, score."""

    X: np.ndarray
    llm: np.ndarray
    p: np.ndarray
    q_off: np.ndarray
    score: np.ndarray
    Q: np.ndarray | None = None  # (n, m) offline quality of every LLM
    C: np.ndarray | None = None  # (n, m) predicted cost / c_ref


def _z(X: np.ndarray) -> np.ndarray:
    return np.hstack([X, np.ones((len(X), 1))])


def ridge_head(
    Z: np.ndarray, r: np.ndarray, w: np.ndarray, A0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """θ and A⁻¹ of a weighted ridge on residuals ``r`` with prior precision ``A0``."""
    A = A0 + (Z * w[:, None]).T @ Z
    A_inv = np.linalg.inv(A)
    return A_inv @ (Z.T @ (w * r)), A_inv


def variants() -> dict[str, Callable[..., np.ndarray]]:
    """Name → f(log, targets, train_X per LLM, X_test, Q_test) → corrections (n_test, m)."""

    def make(
        features: str,
        prior: str,
        kappa: float = 1.0,
        ips: bool = False,
        clip: float | None = None,
        gate: float | None = None,
    ) -> Callable[..., np.ndarray]:
        def f(log: Log, r_all: np.ndarray, trains, X_test, Q_test) -> np.ndarray:
            m = Q_test.shape[1]
            out = np.zeros_like(Q_test)
            for j in range(m):
                sel = log.llm == j
                if not sel.any():
                    continue
                r = r_all[sel]
                if clip is not None:
                    r = np.clip(r, -clip, clip)
                w = np.ones(sel.sum())
                if ips:
                    w = 1.0 / np.maximum(log.p[sel], 0.05)
                    w = w * len(w) / w.sum()
                Xtr = trains[j]
                if features == "bias":
                    Z, Zt, Ztr = (np.ones((k, 1)) for k in (sel.sum(), len(X_test), len(Xtr)))
                elif features == "q":
                    Z = np.c_[np.ones(sel.sum()), log.q_off[sel]]
                    Zt = np.c_[np.ones(len(X_test)), Q_test[:, j]]
                    Ztr = None
                else:
                    Z, Zt, Ztr = _z(log.X[sel]), _z(X_test), _z(Xtr)
                d = Z.shape[1]
                n_tr = len(Xtr)
                if prior == "ridge50":
                    A0 = 50.0 * np.eye(d)
                elif prior == "ntrain":  # ridge = κ · training rows
                    A0 = kappa * n_tr * np.eye(d)
                elif prior == "gram":  # the training rows as rows of residual 0
                    assert Ztr is not None
                    A0 = kappa * (Ztr.T @ Ztr) + np.eye(d)
                elif prior == "gramq":  # on [1, q̂] rows of the training set
                    A0 = kappa * n_tr * np.eye(d)
                else:
                    raise ValueError(prior)
                theta, A_inv = ridge_head(Z, r, w, A0)
                corr = Zt @ theta
                if gate is not None:
                    unc = np.sqrt(np.maximum(np.einsum("nd,de,ne->n", Zt, A_inv, Zt), 0))
                    corr = np.where(unc < gate, corr, 0.0)
                out[:, j] = corr
            return out

        return f

    def guarded(inner, margin: float, holdout: float = 0.3, refit_all: bool = True):
        from mixllm_core.offpolicy import dr_gain
        from mixllm_core.snapshot import GUARD_LAMBDAS

        lams = np.asarray(GUARD_LAMBDAS)
        wq, wc = lams / (1 + lams), 1 / (1 + lams)

        def f(log: Log, r_all, trains, X_test, Q_test):
            n = len(log.llm)
            k = n - int(round(holdout * n))
            old = Log(log.X[:k], log.llm[:k], log.p[:k], log.q_off[:k], log.score[:k])
            held = slice(k, n)
            corr = inner(old, r_all[:k], trains, log.X[held], log.Q[held])
            Q0, C0 = log.Q[held], log.C[held]
            S0 = wq[None, None] * Q0[:, :, None] - wc[None, None] * C0[:, :, None]
            Q1 = np.clip(Q0 + corr, 0, 1)
            S1 = wq[None, None] * Q1[:, :, None] - wc[None, None] * C0[:, :, None]
            lg = log.llm[held]
            rows = np.arange(len(lg))
            y = r_all[held] + log.q_off[held]
            reward = wq[None] * y[:, None] - wc[None] * C0[rows, lg][:, None]
            gain, se = dr_gain(S1.argmax(1), S0.argmax(1), lg, reward, log.p[held], S0)
            if not (np.isfinite(gain) and gain > margin * (se if np.isfinite(se) else np.inf)):
                return np.zeros_like(Q_test)
            if refit_all:
                return inner(log, r_all, trains, X_test, Q_test)
            return inner(old, r_all[:k], trains, X_test, Q_test)

        return f

    return {
        "guard1 full gram": guarded(make("full", "gram"), 1.0),
        "guard2 full gram": guarded(make("full", "gram"), 2.0),
        "guard1 ridge50": guarded(make("full", "ridge50"), 1.0),
        "guard1 bias ntrain": guarded(make("bias", "ntrain"), 1.0),
        "guard1 gram clip": guarded(make("full", "gram", clip=0.5), 1.0),
        "full gram gate0.1": make("full", "gram", gate=0.1),
        "full gram gate0.2": make("full", "gram", gate=0.2),
        "full gram x10": make("full", "gram", kappa=10.0),
        "full gram clip0.25": make("full", "gram", clip=0.25),
        "full ridge50 (before)": make("full", "ridge50"),
        "bias ntrain": make("bias", "ntrain"),
        "bias ntrain ips": make("bias", "ntrain", ips=True),
        "bias 0.25ntrain": make("bias", "ntrain", kappa=0.25),
        "q ntrain": make("q", "ntrain"),
        "q ntrain ips": make("q", "ntrain", ips=True),
        "full ntrain": make("full", "ntrain"),
        "full gram": make("full", "gram"),
        "full gram ips": make("full", "gram", ips=True),
        "full gram x2": make("full", "gram", kappa=2.0),
        "full gram x4": make("full", "gram", kappa=4.0),
        "full gram clip0.5": make("full", "gram", clip=0.5),
        "full gram gate0.05": make("full", "gram", gate=0.05),
    }


def run(name: str, seed: int) -> dict[str, dict[str, float]]:
    data = load_routing_data(DATA[name])
    train, test = data.train_test_split(seed=seed)
    offline, stream = split_offline_stream(train, 0.3, seed)
    router = MixLLMRouter(encoder=StaticEncoder(), seed=seed)
    router.policy = router.maker.policy = replace(router.policy, alpha=0.05)
    router.fit(offline)
    policy = replace(router.policy, lam=5.0, explore="epsilon", epsilon=0.2)
    rows = []
    for i, query in enumerate(stream.queries):
        d = router.route(query, policy=policy)
        logged = router.log.get_decision(d.decision_id)
        j = stream.llms.index(d.llm)
        rows.append((logged.x, j, logged.propensity or 1.0, logged.offline_quality))
        rows[-1] += (float(stream.quality[i, j]),)
    log = Log(*(np.array([r[k] for r in rows]) for k in range(5)))
    names = list(router.model.pool.names)
    _, log.Q, C_log, _ = router.predict_features(log.X, router.features(stream.queries)[1])
    log.C = C_log / max(router.c_ref(), 1e-12)
    trains = [np.asarray(router.model.pool.train[n][0]) for n in names]
    X_test, F_test = router.features(test.queries)
    _, Q_test, C_test, _ = router.predict_features(X_test, F_test)
    cols = [test.llms.index(n) for n in names]
    quality = test.quality[:, cols]
    cost = (test.cost if test.cost is not None else np.zeros_like(test.quality))[:, cols]
    max_cost = float(cost.mean(axis=0).max())
    c_ref = router.c_ref()
    ridx = np.arange(len(test))

    def score(Q: np.ndarray) -> float:
        costs, quals = [], []
        for lam in LAMBDA_GRID:
            idx = choose_indices(router, np.clip(Q, 0, 1), C_test, lam, c_ref)
            costs.append(float(cost[ridx, idx].mean()))
            quals.append(float(quality[ridx, idx].mean()))
        return aiq(costs, quals, max_cost)

    base = score(Q_test)
    out: dict[str, dict[str, float]] = {"none": {"refined": base, "binary": base}}
    targets = {"refined": log.score, "binary": (log.score >= 0.5).astype(float)}
    for vname, f in variants().items():
        out[vname] = {}
        for kind, y in targets.items():
            corr = f(log, np.clip(y, 0, 1) - log.q_off, trains, X_test, Q_test)
            out[vname][kind] = score(Q_test + corr)
    print(f"{name} seed {seed}: none {base:.4f}", flush=True)
    for vname, r in out.items():
        print(
            f"  {vname:24s} refined {100 * (r['refined'] - base):+.2f}  "
            f"binary {100 * (r['binary'] - base):+.2f}",
            flush=True,
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", nargs="+", default=list(DATA))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--out", default="head-variants.json")
    args = p.parse_args()
    result = {f"{n}/{s}": run(n, s) for n in args.data for s in args.seeds}
    Path(args.out).write_text(json.dumps(result, indent=1))
    cells = list(result)
    print(f"\n{'variant':24s} {'worst':>7s} {'mean':>7s}  (AIQ points vs none, both kinds)")
    for vname in next(iter(result.values())):
        gains = [
            100 * (result[c][vname][k] - result[c]["none"][k])
            for c in cells
            for k in ("refined", "binary")
        ]
        print(f"{vname:24s} {min(gains):+7.2f} {np.mean(gains):+7.2f}")


if __name__ == "__main__":
    main()
