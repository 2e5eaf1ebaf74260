"""The learned routers `mixllm bench` and the cross-validation compare mixllm with.

Each baseline maps the training rows and both sets of query vectors to predicted quality ``Q`` and
cost ``C`` of every LLM on the test rows, ``(n_test, m)``; :func:`sweep` turns them into one choice
per λ with the rule mixllm uses (``λ/(1+λ)·Q − 1/(1+λ)·C/c_ref``). They see the bench's plain
query embedding, never mixllm's tag features.

* ``knn`` / ``mlp``: RouterBench's KNN (k = 40) and per-LLM MLP quality routers; cost is each
  LLM's mean training cost.
* ``knn-cost``: the KNN router with KNN-predicted cost too (cost that follows the query).
* ``knn-cv``: quality and cost by KNN with k chosen by an inner 5-fold cross-validation over the
  training rows (folds keep identical prompts together), among :data:`KNN_CV_KS`.
* ``mf``: RouteLLM's matrix-factorisation router generalised from a pair to N LLMs
  (:class:`MatrixFactorisation`); cost is each LLM's mean training cost.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..data import RoutingData

__all__ = [
    "BASELINES",
    "KNN_CV_KS",
    "MatrixFactorisation",
    "duplicate_groups",
    "normalise_prompt",
    "sweep",
    "tuned_knn",
]

#: A learned baseline: (training rows, their vectors, the test vectors, seed) → (Q, C) on test.
Baseline = Callable[[RoutingData, np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]

#: Neighbour counts the ``knn-cv`` baseline chooses among by inner cross-validation.
KNN_CV_KS: tuple[int, ...] = (5, 10, 20, 40, 80, 160)

_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise_prompt(text: str) -> str:
    """A prompt reduced to what makes two prompts the same question: NFKC, case-folded, every run
    of punctuation or whitespace one space.

    Example:
        >>> normalise_prompt("What is  2+2?") == normalise_prompt("what is 2 + 2")
        True
    """
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def duplicate_groups(queries: Sequence[str]) -> np.ndarray:
    """A group id per query; queries that normalise to the same text share one (see
    :func:`normalise_prompt`). Ids are numbered in order of first appearance.

    Example:
        >>> duplicate_groups(["Hi there!", "hi, there", "Bye"]).tolist()
        [0, 0, 1]
    """
    ids: dict[str, int] = {}
    return np.array([ids.setdefault(normalise_prompt(q), len(ids)) for q in queries], dtype=int)


def sweep(
    Q: np.ndarray, C: np.ndarray, lambdas: Sequence[float], c_ref: float
) -> dict[Any, np.ndarray]:
    """Per λ the index of the LLM maximising ``λ/(1+λ)·Q − 1/(1+λ)·C/c_ref`` on each row.

    Example:
        >>> Q, C = np.array([[0.5, 0.9]]), np.array([[0.1, 1.0]])
        >>> {lam: int(i[0]) for lam, i in sweep(Q, C, [0.0, 100.0], 1.0).items()}
        {0.0: 0, 100.0: 1}
    """
    choices: dict[Any, np.ndarray] = {}
    for lam in lambdas:
        s = lam / (1 + lam) * Q - 1 / (1 + lam) * C / c_ref
        choices[lam] = np.argmax(s, axis=1)
    return choices


def _cost(train: RoutingData) -> np.ndarray:
    return train.cost if train.cost is not None else np.zeros_like(train.quality)


def _mean_cost(train: RoutingData, n: int) -> np.ndarray:
    return np.tile(np.nanmean(_cost(train), axis=0), (n, 1))


class MatrixFactorisation:
    """RouteLLM's matrix-factorisation router for N LLMs: ``P(good) = σ(u_jᵀ·Wx + b_j)``.

    RouteLLM scores a (query, LLM) pair by the product of a learned projection of the query
    embedding and a learned vector per LLM, trained on pairwise preferences of two LLMs. Here the
    same bilinear form predicts every LLM's quality directly (fractional scores as soft labels,
    cross-entropy, L2 penalty ``alpha``), fitted by L-BFGS from a seeded start. Follows
    scikit-learn's conventions (``fit`` returns self; learned state ends in ``_``).

    Args:
        rank: Size of the shared space of queries and LLMs.
        alpha: L2 penalty on the projection and the LLM vectors (per quality cell).
        max_iter: L-BFGS iterations.
        seed: Seeds the start.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(200, 8))
        >>> Y = np.column_stack([X[:, 0] > 0, X[:, 0] < 0]).astype(float)
        >>> mf = MatrixFactorisation(rank=2).fit(X, Y)
        >>> bool(((mf.predict(X) > 0.5) == Y).mean() > 0.95)
        True
    """

    def __init__(
        self, rank: int = 16, alpha: float = 1e-3, max_iter: int = 300, seed: int = 0
    ) -> None:
        self.rank = rank
        self.alpha = alpha
        self.max_iter = max_iter
        self.seed = seed

    def fit(self, X: np.ndarray, Y: np.ndarray) -> MatrixFactorisation:
        from scipy.optimize import minimize

        X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
        (n, d), m = X.shape, Y.shape[1]
        r, alpha = self.rank, self.alpha
        rng = np.random.default_rng(self.seed)
        mean = np.clip(Y.mean(axis=0), 1e-3, 1 - 1e-3)
        start = np.concatenate(
            [0.1 * rng.normal(size=d * r), 0.1 * rng.normal(size=m * r), np.log(mean / (1 - mean))]
        )

        def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            return (
                theta[: d * r].reshape(d, r),
                theta[d * r : d * r + m * r].reshape(m, r),
                theta[d * r + m * r :],
            )

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            W, U, b = unpack(theta)
            H = X @ W
            Z = H @ U.T + b
            # cross-entropy with soft labels, numerically stable: log(1+e^z) − y·z
            ce = np.logaddexp(0.0, Z) - Y * Z
            G = (1.0 / (1.0 + np.exp(-Z)) - Y) / (n * m)
            value = ce.mean() + 0.5 * alpha * (np.sum(W * W) + np.sum(U * U))
            grad = np.concatenate(
                [
                    (X.T @ (G @ U) + alpha * W).ravel(),
                    (G.T @ H + alpha * U).ravel(),
                    G.sum(axis=0),
                ]
            )
            return float(value), grad

        res = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": self.max_iter})
        self.W_, self.U_, self.b_ = unpack(res.x)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted quality in [0, 1], ``(n, m)``."""
        Z = np.asarray(X, dtype=float) @ self.W_ @ self.U_.T + self.b_
        out: np.ndarray = 1.0 / (1.0 + np.exp(-Z))
        return out


def tuned_knn(X: np.ndarray, Y: np.ndarray, groups: np.ndarray, seed: int) -> Any:
    """A ``KNeighborsRegressor`` fitted on ``(X, Y)`` with k chosen among :data:`KNN_CV_KS` by a
    5-fold inner cross-validation (squared error; rows sharing a ``groups`` id stay in one fold).

    The neighbours are found once per inner fold for the largest k; every smaller k's prediction
    is a prefix mean of them.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(300, 2))
        >>> Y = (X[:, :1] > 0).astype(float)
        >>> tuned_knn(X, Y, np.arange(300), seed=0).n_neighbors <= 40
        True
    """
    from sklearn.model_selection import GroupKFold
    from sklearn.neighbors import KNeighborsRegressor, NearestNeighbors

    X, Y = np.asarray(X), np.asarray(Y, dtype=float)
    splits = min(5, len(np.unique(groups)))
    ks = [k for k in KNN_CV_KS if k <= (len(X) * (splits - 1)) // splits] or [1]
    errors = np.zeros(len(ks))
    for tr, va in GroupKFold(n_splits=splits, shuffle=True, random_state=seed).split(
        X, groups=groups
    ):
        k_max = min(max(ks), len(tr))
        near = (
            NearestNeighbors(n_neighbors=k_max).fit(X[tr]).kneighbors(X[va], return_distance=False)
        )
        prefix = Y[tr][near].cumsum(axis=1)  # (validation rows, k_max, outputs)
        for i, k in enumerate(ks):
            pred = prefix[:, min(k, k_max) - 1] / min(k, k_max)
            errors[i] += float(((pred - Y[va]) ** 2).sum())
    best = ks[int(np.argmin(errors))]
    return KNeighborsRegressor(n_neighbors=min(best, len(X))).fit(X, Y)


def _knn(train: RoutingData, Xtr: np.ndarray, Xte: np.ndarray, seed: int) -> Any:
    from sklearn.neighbors import KNeighborsRegressor

    knn = KNeighborsRegressor(n_neighbors=min(40, len(train))).fit(Xtr, train.quality)
    return knn.predict(Xte), _mean_cost(train, len(Xte))


def _knn_cost(train: RoutingData, Xtr: np.ndarray, Xte: np.ndarray, seed: int) -> Any:
    from sklearn.neighbors import KNeighborsRegressor

    k = min(40, len(train))
    Y = np.hstack([train.quality, _cost(train)])
    pred = KNeighborsRegressor(n_neighbors=k).fit(Xtr, Y).predict(Xte)
    m = train.quality.shape[1]
    return pred[:, :m], pred[:, m:]


def _knn_cv(train: RoutingData, Xtr: np.ndarray, Xte: np.ndarray, seed: int) -> Any:
    knn = tuned_knn(Xtr, train.quality, duplicate_groups(train.queries), seed)
    from sklearn.neighbors import KNeighborsRegressor

    cost = KNeighborsRegressor(n_neighbors=knn.n_neighbors).fit(Xtr, _cost(train))
    return knn.predict(Xte), cost.predict(Xte)


def _mlp(train: RoutingData, Xtr: np.ndarray, Xte: np.ndarray, seed: int) -> Any:
    from sklearn.neural_network import MLPRegressor

    Q = np.column_stack(
        [
            np.clip(
                MLPRegressor(
                    hidden_layer_sizes=(100,), max_iter=300, early_stopping=True, random_state=seed
                )
                .fit(Xtr, train.quality[:, j])
                .predict(Xte),
                0,
                1,
            )
            for j in range(len(train.llms))
        ]
    )
    return Q, _mean_cost(train, len(Xte))


def _mf(train: RoutingData, Xtr: np.ndarray, Xte: np.ndarray, seed: int) -> Any:
    mf = MatrixFactorisation(seed=seed).fit(Xtr, train.quality)
    return mf.predict(Xte), _mean_cost(train, len(Xte))


#: The learned baselines by name (see the module docstring).
BASELINES: Mapping[str, Baseline] = {
    "knn": _knn,
    "knn-cost": _knn_cost,
    "knn-cv": _knn_cv,
    "mlp": _mlp,
    "mf": _mf,
}
