"""`OutcomeMemory`: what the router has seen answered, per query and LLM.

Traffic repeats itself: a prompt routed before, or one in the training data, comes back. For a
query seen before, the router need not rely on the predictors alone. The memory keeps, per query
(the sha256 of the text the router embeds, as the log's ``query_hash``) and LLM, the sum and the
count of the qualities observed: the training rows ``fit`` learned from, then every feedback.

For a query with ``n`` observations of an LLM, mean ``ȳ``, the quality used for routing is the
shrunk mean ``(n·ȳ + k0·q̂) / (n + k0)``, where ``q̂`` is the model's prediction (offline
predictor plus online head) and ``k0`` the router's ``memory_prior``: the model counts as ``k0``
observations. The default ``k0 = 1`` says that one observed answer weighs as much as the
model's guess, which is a prior, not a fitted value (a fitted one would carry the selection bias
of the split it was fitted on). The uncertainty shrinks by ``sqrt(k0 / (n + k0))``, as the
posterior standard deviation of a mean with ``k0`` prior observations. A query never seen, or an
LLM never observed on it, keeps exactly the model's numbers.

The memory is immutable: every change returns a new one, so a route reads a consistent value
without a lock. A change costs ``O(sqrt(size))`` amortised, not ``O(size)``: recent changes sit
in a small overlay (copied per change) in front of the compact arrays (merged into them once the
overlay outgrows ``sqrt(keys × LLMs)`` entries).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import ConfigError
from .log import text_sha256
from .online import _frozen

__all__ = ["OutcomeMemory", "check_memory_prior", "query_key"]

#: Smallest overlay merged into the arrays (below it a merge costs more than it saves).
_MIN_OVERLAY = 256


def query_key(text: str) -> str:
    """The memory key of a query text: its sha256, the log's ``query_hash``.

    Example:
        >>> query_key("2+2?")[:16]
        '30ad205245cd2523'
    """
    return text_sha256(text)


def check_memory_prior(value: object) -> float:
    """``value`` as a memory prior (a finite number > 0), else :class:`ConfigError`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (ok and math.isfinite(float(value)) and float(value) > 0):  # type: ignore[arg-type]
        raise ConfigError(f"memory_prior must be a finite number > 0, got {value!r}.")
    return float(value)  # type: ignore[arg-type]


class OutcomeMemory:
    """Observed quality per query key and LLM: sums and counts (immutable).

    Args:
        llms: The LLMs with a column, in order.
        keys: One key per row (see :func:`query_key`), unique.
        sums, counts: ``(len(keys), len(llms))`` sum and number of observed qualities.

    Raises:
        ConfigError: shapes that disagree, repeated keys or LLMs, non-finite sums, negative
            counts, or a sum outside ``[0, count]``.

    Example:
        >>> memory = OutcomeMemory.empty(["small", "large"])
        >>> memory = memory.observed(query_key("2+2?"), "small", 1.0)
        >>> memory.stats([query_key("2+2?"), query_key("new")], ["small", "large"])[1].tolist()
        [[1, 0], [0, 0]]
    """

    __slots__ = ("_col", "_counts", "_index", "_recent", "_sums", "llms")

    def __init__(
        self,
        llms: Sequence[str],
        keys: Sequence[str] | np.ndarray,
        sums: np.ndarray,
        counts: np.ndarray,
    ) -> None:
        names = tuple(str(n) for n in llms)
        if len(set(names)) != len(names):
            raise ConfigError(f"OutcomeMemory names an LLM twice: {list(names)}.")
        key_list = [str(k) for k in keys]
        S = np.asarray(sums, dtype=np.float64).reshape(len(key_list), len(names))
        N = np.asarray(counts).reshape(len(key_list), len(names))
        if N.dtype.kind not in "iu" and not (N.dtype.kind == "f" and np.all(np.round(N) == N)):
            raise ConfigError(f"OutcomeMemory counts must be integers, got {N.dtype}.")
        N = N.astype(np.int64)
        index = {k: i for i, k in enumerate(key_list)}
        if len(index) != len(key_list):
            raise ConfigError("OutcomeMemory keys must be unique.")
        if not np.isfinite(S).all() or (N < 0).any() or (S < -1e-9).any() or (S > N + 1e-9).any():
            raise ConfigError(
                "OutcomeMemory sums must be finite and in [0, count], and counts >= 0."
            )
        self.llms: tuple[str, ...] = names
        self._col = {n: j for j, n in enumerate(names)}
        self._index: Mapping[str, int] = index
        self._sums = _frozen(np.array(S, copy=True))
        self._counts = _frozen(np.array(N, copy=True))
        self._recent: Mapping[str, tuple[np.ndarray, np.ndarray]] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def empty(cls, llms: Sequence[str]) -> OutcomeMemory:
        """A memory that has seen nothing."""
        m = len(llms)
        return cls(llms, [], np.zeros((0, m)), np.zeros((0, m), dtype=np.int64))

    @classmethod
    def from_observations(
        cls,
        llms: Sequence[str],
        texts: Sequence[str],
        quality: np.ndarray,
        observed: np.ndarray | None = None,
    ) -> OutcomeMemory:
        """The memory of ``texts`` (rows) × ``llms`` qualities, only the ``observed`` cells
        (None: all); a text that occurs on several rows sums them.

        Example:
            >>> m = OutcomeMemory.from_observations(["a"], ["q", "q"], np.array([[1.0], [0.0]]))
            >>> m.stats([query_key("q")], ["a"])[0].tolist()
            [[1.0]]
        """
        quality = np.asarray(quality, dtype=np.float64)
        mask = np.ones(quality.shape, bool) if observed is None else np.asarray(observed, bool)
        index: dict[str, int] = {}
        rows = np.array([index.setdefault(query_key(t), len(index)) for t in texts], dtype=int)
        S = np.zeros((len(index), len(llms)))
        N = np.zeros((len(index), len(llms)), dtype=np.int64)
        np.add.at(S, rows, np.where(mask, quality, 0.0))
        np.add.at(N, rows, mask.astype(np.int64))
        return cls(llms, list(index), S, N)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        """The number of keys held."""
        return len(self._index) + sum(1 for k in self._recent if k not in self._index)

    def __contains__(self, key: object) -> bool:
        return key in self._recent or key in self._index

    def _row(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        hit = self._recent.get(key)
        if hit is not None:
            return hit
        i = self._index.get(key)
        return None if i is None else (self._sums[i], self._counts[i])

    def stats(
        self, keys: Sequence[str], llms: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Sums and counts ``(len(keys), len(llms))`` of ``keys`` for ``llms`` (zero where
        nothing was observed), or None when no key is held (the common, cheap case)."""
        hits = [(i, row) for i, k in enumerate(keys) if (row := self._row(k)) is not None]
        if not hits:
            return None
        cols = np.array([self._col.get(n, -1) for n in llms], dtype=int)
        known = cols >= 0
        S = np.zeros((len(keys), len(llms)))
        N = np.zeros((len(keys), len(llms)), dtype=np.int64)
        for i, (s, n) in hits:
            S[i, known] = s[cols[known]]
            N[i, known] = n[cols[known]]
        return S, N

    def blend(
        self,
        keys: Sequence[str],
        llms: Sequence[str],
        quality: np.ndarray,
        uncertainty: np.ndarray,
        prior: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Quality and uncertainty ``(len(keys), len(llms))`` with the observations mixed in
        (module docstring); the inputs themselves where nothing was observed.

        Example:
            >>> m = OutcomeMemory.empty(["a", "b"]).observed(query_key("q"), "a", 0.0)
            >>> Q, U = m.blend([query_key("q")], ["a", "b"], np.array([[0.8, 0.5]]),
            ...                np.ones((1, 2)), prior=1.0)
            >>> Q.tolist()
            [[0.4, 0.5]]
        """
        hits = [(i, row) for i, k in enumerate(keys) if (row := self._row(k)) is not None]
        if not hits:
            return quality, uncertainty
        cols = np.array([self._col.get(n, -1) for n in llms], dtype=int)
        known = cols >= 0
        Q = np.array(quality, dtype=np.float64, copy=True)
        U = np.array(uncertainty, dtype=np.float64, copy=True)
        for i, (s, n) in hits:
            counts = np.where(known, n[cols], 0)
            seen = counts > 0
            q, u, c = Q[i, seen], U[i, seen], counts[seen]
            Q[i, seen] = (s[cols][seen] + prior * q) / (c + prior)
            U[i, seen] = u * np.sqrt(prior / (c + prior))
        return Q, U

    # ------------------------------------------------------------------ changed copies
    def _copy(
        self,
        recent: Mapping[str, tuple[np.ndarray, np.ndarray]],
        base: tuple[tuple[str, ...], Mapping[str, int], np.ndarray, np.ndarray] | None = None,
    ) -> OutcomeMemory:
        new = object.__new__(OutcomeMemory)
        llms, index, S, N = base or (self.llms, self._index, self._sums, self._counts)
        new.llms, new._index, new._sums, new._counts = llms, index, S, N
        new._col = self._col if llms is self.llms else {n: j for j, n in enumerate(llms)}
        new._recent = recent
        return new

    def observed(self, key: str, llm: str, score: float) -> OutcomeMemory:
        """This memory plus one observation of ``llm`` on ``key`` (an LLM without a column
        gets one)."""
        memory = self if llm in self._col else self.with_llm(llm)
        j = memory._col[llm]
        row = memory._row(key)
        m = len(memory.llms)
        s = np.zeros(m) if row is None else row[0].copy()
        n = np.zeros(m, dtype=np.int64) if row is None else row[1].copy()
        s[j] += float(score)
        n[j] += 1
        recent = {**memory._recent, key: (_frozen(s), _frozen(n))}
        out = memory._copy(recent)
        limit = max(_MIN_OVERLAY, int(math.sqrt(max(len(memory._index), 1) * max(m, 1))))
        return out.compacted() if len(recent) > limit else out

    def merged(self, other: OutcomeMemory) -> OutcomeMemory:
        """This memory plus every observation of ``other`` (columns joined by name).

        Example:
            >>> a = OutcomeMemory.empty(["x"]).observed(query_key("q"), "x", 1.0)
            >>> b = OutcomeMemory.empty(["y"]).observed(query_key("q"), "y", 0.5)
            >>> a.merged(b).stats([query_key("q")], ["x", "y"])[0].tolist()
            [[1.0, 0.5]]
        """
        llms = (*self.llms, *(n for n in other.llms if n not in self._col))
        keys, S, N = self.arrays()
        okeys, oS, oN = other.arrays()
        new = [k for k in okeys if k not in self]
        keys = [*keys, *new]
        index = {k: i for i, k in enumerate(keys)}
        S2 = np.zeros((len(keys), len(llms)))
        N2 = np.zeros((len(keys), len(llms)), dtype=np.int64)
        S2[: len(S), : len(self.llms)], N2[: len(N), : len(self.llms)] = S, N
        rows = np.array([index[k] for k in okeys], dtype=int)
        cols = np.array([llms.index(n) for n in other.llms], dtype=int)
        S2[np.ix_(rows, cols)] += oS
        N2[np.ix_(rows, cols)] += oN
        return OutcomeMemory(llms, keys, S2, N2)

    def compacted(self) -> OutcomeMemory:
        """The same memory with its overlay merged into the arrays (the index is shared when
        the overlay holds no new key, else copied once)."""
        if not self._recent:
            return self
        new = [k for k in self._recent if k not in self._index]
        index: Mapping[str, int] = self._index
        if new:
            grown = dict(self._index)
            for k in new:
                grown[k] = len(grown)
            index = grown
        S, N = self._sums, self._counts
        S = np.concatenate([S, np.zeros((len(new), S.shape[1]))])
        N = np.concatenate([N, np.zeros((len(new), N.shape[1]), dtype=np.int64)])
        for k, (s, n) in self._recent.items():
            S[index[k]], N[index[k]] = s, n
        return self._copy({}, (self.llms, index, _frozen(S), _frozen(N)))

    def with_llm(self, llm: str) -> OutcomeMemory:
        """This memory with an (empty) column for ``llm``."""
        if llm in self._col:
            return self
        keys, S, N = self.arrays()
        S = np.hstack([S, np.zeros((len(S), 1))])
        N = np.hstack([N, np.zeros((len(N), 1), dtype=np.int64)])
        return OutcomeMemory((*self.llms, llm), keys, S, N)

    def without_llm(self, llm: str) -> OutcomeMemory:
        """This memory without ``llm``'s observations; keys left with none are dropped."""
        if llm not in self._col:
            return self
        keys, S, N = self.arrays()
        keep = [j for j, n in enumerate(self.llms) if n != llm]
        S, N = S[:, keep], N[:, keep]
        rows = np.flatnonzero(N.sum(axis=1) > 0)
        return OutcomeMemory(
            [self.llms[j] for j in keep], [keys[i] for i in rows], S[rows], N[rows]
        )

    # ------------------------------------------------------------------ state
    def arrays(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """``(keys, sums, counts)`` of every key, overlay merged (columns: :attr:`llms`)."""
        keys = list(self._index)
        if not self._recent:
            return keys, self._sums, self._counts
        S, N = self._sums.copy(), self._counts.copy()
        new = [k for k in self._recent if k not in self._index]
        S = np.vstack([S, np.zeros((len(new), len(self.llms)))])
        N = np.vstack([N, np.zeros((len(new), len(self.llms)), dtype=np.int64)])
        where = {**self._index, **{k: len(keys) + i for i, k in enumerate(new)}}
        for k, (s, n) in self._recent.items():
            S[where[k]], N[where[k]] = s, n
        return keys + new, S, N

    def equals(self, other: OutcomeMemory) -> bool:
        """Whether both hold exactly the same observations (column and key order aside)."""
        if set(self.llms) != set(other.llms) or len(self) != len(other):
            return False
        keys, S, N = self.arrays()
        found = other.stats(keys, self.llms)
        if found is None:
            return not keys
        return bool(np.array_equal(found[0], S) and np.array_equal(found[1], N))

    def get_state(self) -> dict[str, Any]:
        """JSON-ready description (``llms``) and arrays (``keys`` as 64-byte ASCII hex,
        ``sums``, ``counts``)."""
        keys, S, N = self.arrays()
        return {
            "llms": list(self.llms),
            "keys": np.array([k.encode("ascii") for k in keys], dtype="S64"),
            "sums": np.asarray(S),
            "counts": np.asarray(N),
        }
