"""Online heads: a LinUCB ridge regression per LLM, updated from feedback.

Each head learns the residual between observed feedback and the offline predictor's quality, on
the query representation with a bias term. ``A⁻¹`` is maintained with Sherman–Morrison rank-one
updates (no matrix inverse per step); the exploration bonus is ``sqrt(xᵀA⁻¹x)``.

A head starts from ``A = ridge·I`` (a cold router: feedback is all it learns from), or from the
offline training rows of its LLM (:func:`training_prior`: ``A = I + Σ_train zzᵀ``, each training
row a row of residual 0): one feedback then weighs as much as one more training row, and the head
moves only in the directions the offline data left open.

:class:`HeadsTable` is the heads of a pool as one immutable value (what a router routes with);
:class:`OnlineHeads` is a mutable holder of one, for use outside a router.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, UnknownLLMError

__all__ = ["HeadsState", "HeadsTable", "OnlineHead", "OnlineHeads", "training_prior"]


def _with_bias(X: np.ndarray) -> np.ndarray:
    X = np.atleast_2d(np.asarray(X, dtype=float))
    return np.hstack([X, np.ones((X.shape[0], 1))])


def _sherman_morrison(A_inv: np.ndarray, b: np.ndarray, z: np.ndarray, target: float) -> np.ndarray:
    """Add ``z zᵀ`` to ``A`` and ``target·z`` to ``b`` in place; returns the new ``θ = A⁻¹b``."""
    Az = A_inv @ z
    A_inv -= np.outer(Az, Az) / (1.0 + z @ Az)
    b += target * z
    theta: np.ndarray = A_inv @ b
    return theta


def training_prior(X: np.ndarray, *, ridge: float = 1.0) -> np.ndarray:
    """``A⁻¹`` of a head whose LLM was trained on the rows ``X``: ``(ridge·I + Σ zzᵀ)⁻¹``.

    ``z`` is a row with the bias term. A head starting from it treats the training rows as
    observations of residual 0 (the offline predictor fits them), so each feedback counts as
    one more training row: the correction stays small where the training rows already speak.

    Example:
        >>> A_inv = training_prior(np.zeros((99, 2)))
        >>> round(float(A_inv[2, 2]), 3)  # the bias: 1 / (1 + 99 rows)
        0.01
    """
    if not ridge > 0:
        raise ConfigError(f"ridge must be > 0, got {ridge!r}.")
    Z = _with_bias(X)
    A = Z.T @ Z
    A[np.diag_indices_from(A)] += ridge
    A_inv: np.ndarray = np.linalg.inv(A)
    return _frozen(A_inv)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


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
        corr: np.ndarray = _with_bias(X) @ self.theta
        return corr

    def uncertainty(self, X: np.ndarray) -> np.ndarray:
        Z = _with_bias(X)
        unc: np.ndarray = np.sqrt(np.maximum(np.einsum("nd,de,ne->n", Z, self.A_inv, Z), 0.0))
        return unc


class HeadsTable:
    """The online heads as one immutable value: every update returns a new table.

    Copy-on-write: an update builds new arrays for the one head it changes and shares the others,
    so a route that holds a table reads parameters no writer ever modifies, with no lock. A head
    that has seen no feedback keeps only its scale ``s`` (``A⁻¹ = s·I``) until its first update.

    Example:
        >>> table = HeadsTable.empty(2).with_head("a").learned("a", np.array([1.0, 0.0]), 0.5)
        >>> corr, _ = table.predict(("a",), np.array([[1.0, 0.0]]))
        >>> round(float(corr[0, 0]), 3), int(table.n_updates[0])
        (0.333, 1)
    """

    __slots__ = ("A_inv", "b", "dim", "n_updates", "names", "ridge", "scale", "theta", "_index")

    def __init__(
        self,
        dim: int,
        ridge: float,
        names: tuple[str, ...],
        A_inv: tuple[np.ndarray | None, ...],
        b: tuple[np.ndarray, ...],
        theta: np.ndarray,
        n_updates: np.ndarray,
        scale: np.ndarray,
    ) -> None:
        self.dim, self.ridge, self.names = dim, ridge, names
        self.A_inv, self.b = A_inv, b  # per head; A_inv None: s·I, never updated
        self.theta, self.n_updates, self.scale = theta, n_updates, scale
        for array in (theta, n_updates, scale):
            array.flags.writeable = False
        self._index = {name: i for i, name in enumerate(names)}

    @classmethod
    def empty(cls, dim: int, *, ridge: float = 1.0) -> HeadsTable:
        """A table with no heads."""
        _check(dim, ridge)
        return cls(dim, ridge, (), (), (), np.zeros((0, dim + 1)), np.zeros(0, int), np.zeros(0))

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __len__(self) -> int:
        return len(self.names)

    def _index_of(self, name: str) -> int:
        i = self._index.get(name)
        if i is None:
            raise UnknownLLMError(name, self.names)
        return i

    def _replace_row(
        self, i: int, A_inv: np.ndarray | None, b: np.ndarray, theta: np.ndarray, n: int, s: float
    ) -> HeadsTable:
        thetas, counts, scales = self.theta.copy(), self.n_updates.copy(), self.scale.copy()
        thetas[i], counts[i], scales[i] = theta, n, s
        return HeadsTable(
            self.dim,
            self.ridge,
            self.names,
            (*self.A_inv[:i], A_inv, *self.A_inv[i + 1 :]),
            (*self.b[:i], b, *self.b[i + 1 :]),
            thetas,
            counts,
            scales,
        )

    def with_head(self, name: str, *, prior_scale: float = 1.0) -> HeadsTable:
        """This table plus a fresh head for ``name`` (``A⁻¹ = prior_scale / ridge · I``)."""
        if name in self._index:
            raise ConfigError(f"An online head for {name!r} exists already.")
        zero = _frozen(np.zeros(self.dim + 1))
        return HeadsTable(
            self.dim,
            self.ridge,
            (*self.names, name),
            (*self.A_inv, None),
            (*self.b, zero),
            np.vstack([self.theta, zero]),
            np.append(self.n_updates, 0),
            np.append(self.scale, prior_scale / self.ridge),
        )

    def with_heads(self, names: Sequence[str]) -> HeadsTable:
        """This table plus a fresh head (prior scale 1) for each of ``names`` it lacks."""
        table = self
        for name in names:
            if name not in table:
                table = table.with_head(name)
        return table

    def without(self, name: str) -> HeadsTable:
        """This table without ``name``'s head (itself when it has none)."""
        i = self._index.get(name)
        if i is None:
            return self
        keep = [j for j in range(len(self.names)) if j != i]
        return HeadsTable(
            self.dim,
            self.ridge,
            tuple(self.names[j] for j in keep),
            tuple(self.A_inv[j] for j in keep),
            tuple(self.b[j] for j in keep),
            self.theta[keep],
            self.n_updates[keep],
            self.scale[keep],
        )

    def reset(self, name: str) -> HeadsTable:
        """This table with ``name``'s head fresh again (prior scale 1), in the same place."""
        i = self._index_of(name)
        zero = _frozen(np.zeros(self.dim + 1))
        return self._replace_row(i, None, zero, zero, 0, 1.0 / self.ridge)

    def learned(
        self, name: str, x: np.ndarray, target: float, *, prior: np.ndarray | None = None
    ) -> HeadsTable:
        """This table with ``name``'s head updated by residual ``target`` at representation ``x``.

        ``prior``: the ``A⁻¹`` a head that has seen no feedback starts from (see
        :func:`training_prior`); ignored once it has. None: ``s·I``.
        """
        i = self._index_of(name)
        old = self.A_inv[i]
        fresh = int(self.n_updates[i]) == 0
        if fresh and prior is not None:
            A_inv = np.array(prior, dtype=float)
            b = np.zeros(self.dim + 1)
        else:
            A_inv = np.eye(self.dim + 1) * self.scale[i] if old is None else old.copy()
            b = self.b[i].copy()
        theta = _sherman_morrison(A_inv, b, _with_bias(x)[0], float(target))
        n = int(self.n_updates[i]) + 1
        return self._replace_row(i, _frozen(A_inv), _frozen(b), theta, n, float(self.scale[i]))

    def fitted(
        self, name: str, X: np.ndarray, targets: np.ndarray, *, prior: np.ndarray | None = None
    ) -> HeadsTable:
        """This table with ``name``'s head learned afresh from the rows ``X`` and residuals
        ``targets`` at once (what :meth:`learned` row by row from a fresh head gives, rounding
        aside)."""
        i = self._index_of(name)
        d = self.dim + 1
        A0_inv = np.eye(d) * self.scale[i] if prior is None else np.asarray(prior, dtype=float)
        Z = _with_bias(X)
        targets = np.asarray(targets, dtype=float).reshape(-1)
        if Z.shape[0] != targets.shape[0] or Z.shape[1] != d:
            raise ConfigError(
                f"fitted() takes rows of dim {self.dim} and one target per row, got "
                f"{np.shape(X)} and {targets.shape}."
            )
        A_inv = np.linalg.inv(np.linalg.inv(A0_inv) + Z.T @ Z)
        b = Z.T @ targets
        theta = A_inv @ b
        return self._replace_row(
            i, _frozen(A_inv), _frozen(b), theta, len(targets), float(self.scale[i])
        )

    def predict(self, names: Sequence[str], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residual corrections and uncertainties, each ``(n, m)``, for the LLMs ``names``.

        A head that has seen no feedback has ``A⁻¹ = s·I``: its uncertainty is ``sqrt(s)·|z|``.
        """
        Z = _with_bias(X)
        if tuple(names) == self.names:
            idx = np.arange(len(self.names))
            theta, counts, scale = self.theta, self.n_updates, self.scale
        else:
            idx = np.array([self._index_of(n) for n in names], dtype=int)
            theta, counts, scale = self.theta[idx], self.n_updates[idx], self.scale[idx]
        corr = Z @ theta.T
        unc = np.empty_like(corr)
        fresh = counts == 0
        if fresh.any():
            unc[:, fresh] = np.sqrt(scale[fresh])[None, :] * np.linalg.norm(Z, axis=1)[:, None]
        for col in np.flatnonzero(~fresh):
            ZA = Z @ self.A_inv[idx[col]]
            unc[:, col] = np.sqrt(np.maximum((ZA * Z).sum(axis=1), 0.0))
        return corr, unc

    def matrix(self, name: str) -> np.ndarray:
        """``name``'s ``A⁻¹`` (read-only)."""
        i = self._index_of(name)
        A_inv = self.A_inv[i]
        return _frozen(np.eye(self.dim + 1) * self.scale[i]) if A_inv is None else A_inv

    def get_state(self, names: Sequence[str] | None = None) -> HeadsState:
        """A copy of the heads of ``names`` (default: all), in that order."""
        names = tuple(self.names if names is None else names)
        idx = [self._index_of(n) for n in names]
        d = self.dim + 1
        return HeadsState(
            self.dim,
            self.ridge,
            names,
            np.stack([self.matrix(n) for n in names]) if names else np.zeros((0, d, d)),
            np.stack([self.b[i] for i in idx]) if names else np.zeros((0, d)),
            self.n_updates[idx].copy(),
        )

    @classmethod
    def from_state(cls, state: HeadsState) -> HeadsTable:
        """The table :meth:`get_state` described."""
        A_inv = tuple(_frozen(np.array(a, dtype=float)) for a in state.A_inv)
        b = tuple(_frozen(np.array(v, dtype=float)) for v in state.b)
        theta = (
            np.stack([a @ v for a, v in zip(A_inv, b)]) if A_inv else np.zeros((0, state.dim + 1))
        )
        scale = np.array([a[0, 0] for a in A_inv], dtype=float)
        counts = np.array(state.n_updates, dtype=int)
        return cls(state.dim, state.ridge, state.names, A_inv, b, theta, counts, scale)


class OnlineHeads:
    """One LinUCB head per LLM, stored stacked so routing evaluates all of them in one call.

    A mutable holder of a :class:`HeadsTable`: each change builds a new table and publishes it
    under a lock, each read takes the current table with one attribute read (no lock), so a
    reader never sees a half-applied change.

    Example:
        >>> heads = OnlineHeads(2); heads.add("a"); heads.learn_one("a", np.ones(2), 1.0)
        >>> heads.names, int(heads.n_updates[0])
        (['a'], 1)
    """

    def __init__(self, dim: int, *, ridge: float = 1.0) -> None:
        self.table = HeadsTable.empty(dim, ridge=ridge)
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self.table.dim

    @property
    def ridge(self) -> float:
        return self.table.ridge

    @property
    def names(self) -> list[str]:
        return list(self.table.names)

    @property
    def A_inv(self) -> np.ndarray:
        """``(m, d + 1, d + 1)``: every head's ``A⁻¹`` (a copy)."""
        return self.table.get_state().A_inv

    @property
    def b(self) -> np.ndarray:
        return self.table.get_state().b

    @property
    def theta(self) -> np.ndarray:
        return self.table.theta

    @property
    def n_updates(self) -> np.ndarray:
        return self.table.n_updates

    def __contains__(self, name: object) -> bool:
        return name in self.table

    def get_state(self, names: Sequence[str] | None = None) -> HeadsState:
        """A copy of the heads of ``names`` (default: all), in that order."""
        return self.table.get_state(names)

    @classmethod
    def from_state(cls, state: HeadsState) -> OnlineHeads:
        """The heads :meth:`get_state` described."""
        heads = cls(state.dim, ridge=state.ridge)
        heads.table = HeadsTable.from_state(state)
        return heads

    def add(self, name: str, *, prior_scale: float = 1.0) -> None:
        with self._lock:
            self.table = self.table.with_head(name, prior_scale=prior_scale)

    def remove(self, name: str) -> None:
        with self._lock:
            self.table = self.table.without(name)

    def learn_one(self, name: str, x: np.ndarray, target: float) -> None:
        """Update ``name``'s head with residual ``target`` at representation ``x``."""
        with self._lock:
            self.table = self.table.learned(name, x, target)

    def predict(self, names: Sequence[str], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residual corrections and uncertainties, each ``(n, m)``, for the LLMs ``names``."""
        return self.table.predict(names, X)
