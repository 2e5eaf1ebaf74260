"""Online heads: a LinUCB ridge regression per LLM, updated from feedback.

Each head learns the residual between observed feedback and the offline predictor's quality, on
the query representation with a bias term. ``A⁻¹`` is maintained with Sherman–Morrison rank-one
updates (no matrix inverse per step); the exploration bonus is ``sqrt(xᵀA⁻¹x)``.
"""

from __future__ import annotations

import threading

import numpy as np

from .errors import ConfigError

__all__ = ["OnlineHead", "OnlineHeads"]


def _with_bias(X: np.ndarray) -> np.ndarray:
    X = np.atleast_2d(np.asarray(X, dtype=float))
    return np.hstack([X, np.ones((X.shape[0], 1))])


class OnlineHead:
    """Ridge regression ``θ = A⁻¹b`` with ``A = ridge·I + Σ xxᵀ``, updated one sample at a time.

    Args:
        dim: Size of the representation (a bias term is added).
        ridge: Prior precision; larger means slower to move away from the offline prediction.
        prior_scale: Multiplies the starting ``A⁻¹`` (a new LLM starts wide: it gets explored).

    Example:
        >>> head = OnlineHead(dim=2)
        >>> head.learn_one(np.array([1.0, 0.0]), 0.5)
        >>> round(float(head.predict(np.array([[1.0, 0.0]]))[0]), 3)
        0.167
    """

    def __init__(self, dim: int, *, ridge: float = 1.0, prior_scale: float = 1.0) -> None:
        if not isinstance(dim, int) or dim <= 0:
            raise ConfigError(f"OnlineHead.dim must be a positive int, got {dim!r}.")
        if not ridge > 0:
            raise ConfigError(f"OnlineHead.ridge must be > 0, got {ridge!r}.")
        self.dim = dim
        self.ridge = ridge
        self.A_inv = np.eye(dim + 1) * (prior_scale / ridge)
        self.b = np.zeros(dim + 1)
        self.theta = np.zeros(dim + 1)
        self.n_updates = 0

    def learn_one(self, x: np.ndarray, target: float) -> None:
        """Add one observation: representation ``x`` and residual ``target``."""
        z = _with_bias(x)[0]
        Az = self.A_inv @ z
        self.A_inv -= np.outer(Az, Az) / (1.0 + z @ Az)
        self.b += target * z
        self.theta = self.A_inv @ self.b
        self.n_updates += 1

    def predict(self, X: np.ndarray) -> np.ndarray:
        return _with_bias(X) @ self.theta

    def uncertainty(self, X: np.ndarray) -> np.ndarray:
        Z = _with_bias(X)
        return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", Z, self.A_inv, Z), 0.0))


class OnlineHeads:
    """One :class:`OnlineHead` per LLM, evaluated together for routing."""

    def __init__(self, dim: int, *, ridge: float = 1.0) -> None:
        self.dim = dim
        self.ridge = ridge
        self.heads: dict[str, OnlineHead] = {}
        self._lock = threading.Lock()

    def add(self, name: str, *, prior_scale: float = 1.0) -> None:
        with self._lock:
            self.heads[name] = OnlineHead(self.dim, ridge=self.ridge, prior_scale=prior_scale)

    def remove(self, name: str) -> None:
        with self._lock:
            self.heads.pop(name, None)

    def learn_one(self, name: str, x: np.ndarray, target: float) -> None:
        with self._lock:
            self.heads[name].learn_one(x, target)

    def predict(self, names: list[str], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residual corrections and uncertainties, each ``(n, m)``."""
        Z = _with_bias(X)
        with self._lock:
            heads = [self.heads[n] for n in names]
            theta = np.stack([h.theta for h in heads], axis=1)
            A_inv = np.stack([h.A_inv for h in heads])
        corr = Z @ theta
        unc = np.sqrt(np.maximum(np.einsum("nd,mde,ne->nm", Z, A_inv, Z), 0.0))
        return corr, unc
