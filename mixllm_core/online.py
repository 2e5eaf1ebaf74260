"""Online heads: a LinUCB ridge regression per LLM, updated from feedback.

Each head learns the residual between observed feedback and the offline predictor's quality, on
the query representation with a bias term. ``A⁻¹`` is maintained with Sherman–Morrison rank-one
updates (no matrix inverse per step); the exploration bonus is ``sqrt(xᵀA⁻¹x)``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, UnknownLLMError

__all__ = ["HeadsState", "OnlineHead", "OnlineHeads"]


def _with_bias(X: np.ndarray) -> np.ndarray:
    X = np.atleast_2d(np.asarray(X, dtype=float))
    return np.hstack([X, np.ones((X.shape[0], 1))])


def _sherman_morrison(A_inv: np.ndarray, b: np.ndarray, z: np.ndarray, target: float) -> np.ndarray:
    """Add ``z zᵀ`` to ``A`` and ``target·z`` to ``b`` in place; returns the new ``θ = A⁻¹b``."""
    Az = A_inv @ z
    A_inv -= np.outer(Az, Az) / (1.0 + z @ Az)
    b += target * z
    return A_inv @ b


def _check(dim: int, ridge: float) -> None:
    if not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0:
        raise ConfigError(f"dim must be a positive int, got {dim!r}.")
    if not ridge > 0:
        raise ConfigError(f"ridge must be > 0, got {ridge!r}.")


@dataclass(frozen=True, eq=False)  # holds arrays: compared by identity
class HeadsState:
    """What :class:`OnlineHeads` learned, as :meth:`OnlineHeads.get_state` gives it (copies).

    Row ``i`` of ``A_inv``, ``b`` and ``n_updates`` belongs to ``names[i]``. Validated on
    construction: shapes that match ``dim``, finite values, non-negative update counts.

    Example:
        >>> heads = OnlineHeads(2); heads.add("a")
        >>> heads.get_state().A_inv.shape
        (1, 3, 3)
    """

    dim: int
    ridge: float
    names: tuple[str, ...]
    A_inv: np.ndarray
    b: np.ndarray
    n_updates: np.ndarray

    def __post_init__(self) -> None:
        ridge = self.ridge
        try:
            finite = math.isfinite(ridge) and not isinstance(ridge, bool)
        except (TypeError, OverflowError):  # not a number, or an int too large for a float
            finite = False
        if not finite:
            raise ConfigError(f"ridge must be a finite number > 0, got {ridge!r}.")
        _check(self.dim, ridge)
        names = tuple(self.names)
        if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
            raise ConfigError(f"HeadsState.names must be distinct strings, got {names!r}.")
        m, d = len(names), self.dim + 1
        for field, kinds, shape in (
            ("A_inv", "f", (m, d, d)),
            ("b", "f", (m, d)),
            ("n_updates", "iu", (m,)),
        ):
            value = np.asarray(getattr(self, field))
            if value.dtype.kind not in kinds or value.shape != shape:
                raise ConfigError(
                    f"HeadsState.{field} must be a {'float' if kinds == 'f' else 'integer'} "
                    f"array of shape {shape} for {m} heads of dim {self.dim}, got "
                    f"{value.dtype} {value.shape}."
                )
            if not np.isfinite(value).all() or (kinds == "iu" and (value < 0).any()):
                raise ConfigError(f"HeadsState.{field} holds NaN, infinite or negative values.")
            object.__setattr__(self, field, value)
        object.__setattr__(self, "names", names)


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
        0.333
    """

    def __init__(self, dim: int, *, ridge: float = 1.0, prior_scale: float = 1.0) -> None:
        _check(dim, ridge)
        self.dim = dim
        self.ridge = ridge
        self.A_inv = np.eye(dim + 1) * (prior_scale / ridge)
        self.b = np.zeros(dim + 1)
        self.theta = np.zeros(dim + 1)
        self.n_updates = 0

    def learn_one(self, x: np.ndarray, target: float) -> None:
        """Add one observation: representation ``x`` and residual ``target``."""
        self.theta = _sherman_morrison(self.A_inv, self.b, _with_bias(x)[0], float(target))
        self.n_updates += 1

    def predict(self, X: np.ndarray) -> np.ndarray:
        return _with_bias(X) @ self.theta

    def uncertainty(self, X: np.ndarray) -> np.ndarray:
        Z = _with_bias(X)
        return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", Z, self.A_inv, Z), 0.0))


class OnlineHeads:
    """One LinUCB head per LLM, stored stacked so routing evaluates all of them in one call."""

    def __init__(self, dim: int, *, ridge: float = 1.0) -> None:
        _check(dim, ridge)
        self.dim = dim
        self.ridge = ridge
        self.names: list[str] = []
        self.A_inv = np.zeros((0, dim + 1, dim + 1))
        self.b = np.zeros((0, dim + 1))
        self.theta = np.zeros((0, dim + 1))
        self.n_updates = np.zeros(0, dtype=int)
        self._lock = threading.Lock()

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def get_state(self, names: Sequence[str] | None = None) -> HeadsState:
        """A copy of the heads of ``names`` (default: all), in that order."""
        with self._lock:
            names = list(self.names if names is None else names)
            for name in names:
                if name not in self.names:
                    raise UnknownLLMError(name, self.names)
            idx = [self.names.index(n) for n in names]
            return HeadsState(
                self.dim,
                self.ridge,
                tuple(names),
                self.A_inv[idx].copy(),
                self.b[idx].copy(),
                self.n_updates[idx].copy(),
            )

    @classmethod
    def from_state(cls, state: HeadsState) -> OnlineHeads:
        """The heads :meth:`get_state` described."""
        heads = cls(state.dim, ridge=state.ridge)
        heads.names = list(state.names)
        heads.A_inv = state.A_inv.astype(float)  # copies
        heads.b = state.b.astype(float)
        heads.n_updates = state.n_updates.astype(int)
        heads.theta = np.einsum("mde,me->md", heads.A_inv, heads.b)
        return heads

    def add(self, name: str, *, prior_scale: float = 1.0) -> None:
        with self._lock:
            if name in self.names:
                raise ConfigError(f"An online head for {name!r} exists already.")
            eye = np.eye(self.dim + 1)[None] * (prior_scale / self.ridge)
            self.names.append(name)
            self.A_inv = np.concatenate([self.A_inv, eye])
            self.b = np.vstack([self.b, np.zeros(self.dim + 1)])
            self.theta = np.vstack([self.theta, np.zeros(self.dim + 1)])
            self.n_updates = np.append(self.n_updates, 0)

    def remove(self, name: str) -> None:
        with self._lock:
            if name not in self.names:
                return
            i = self.names.index(name)
            del self.names[i]
            self.A_inv = np.delete(self.A_inv, i, axis=0)
            self.b = np.delete(self.b, i, axis=0)
            self.theta = np.delete(self.theta, i, axis=0)
            self.n_updates = np.delete(self.n_updates, i)

    def learn_one(self, name: str, x: np.ndarray, target: float) -> None:
        """Update ``name``'s head with residual ``target`` at representation ``x``."""
        with self._lock:
            if name not in self.names:
                raise UnknownLLMError(name, self.names)
            i = self.names.index(name)
            self.theta[i] = _sherman_morrison(
                self.A_inv[i], self.b[i], _with_bias(x)[0], float(target)
            )
            self.n_updates[i] += 1

    def predict(self, names: list[str], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residual corrections and uncertainties, each ``(n, m)``, for the LLMs ``names``.

        A head that has seen no feedback still has ``A⁻¹ = s·I``: its uncertainty is
        ``sqrt(s)·|z|`` and is computed without touching the matrix.
        """
        Z = _with_bias(X)
        with self._lock:
            idx = np.array([self.names.index(n) for n in names], dtype=int)
            theta = self.theta[idx]
            corr = Z @ theta.T
            unc = np.empty_like(corr)
            trained = self.n_updates[idx] > 0
            if (~trained).any():
                scale = self.A_inv[idx[~trained], 0, 0]
                unc[:, ~trained] = np.sqrt(scale)[None, :] * np.linalg.norm(Z, axis=1)[:, None]
            for col in np.flatnonzero(trained):
                ZA = Z @ self.A_inv[idx[col]]
                unc[:, col] = np.sqrt(np.maximum((ZA * Z).sum(axis=1), 0.0))
        return corr, unc
