"""`RoutingData`: n queries × m LLMs of observed quality, cost, tokens and latency, validated on
construction (what is allowed is in :mod:`mixllm_core.data`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import DataFormatError
from ..spec import LLMSpec

__all__ = ["ASSUMED_OUTPUT_TOKENS", "REFERENCE_INPUT_TOKENS", "RoutingData"]

#: Output length assumed when a data set has prices but no token counts (LLMRouter).
ASSUMED_OUTPUT_TOKENS = 200
#: Input length of the reference call that sets a cold router's cost scale (see ``c_ref``).
REFERENCE_INPUT_TOKENS = 100
_GENERIC_REQUIRED = ("sample_id", "query", "llm", "quality")
_GENERIC_OPTIONAL = (
    "cost",
    "input_tokens",
    "output_tokens",
    "latency",
    "task",
    "split",
    "propensity",
    "timestamp",
)
_MATRICES = (
    "quality",
    "cost",
    "input_tokens",
    "output_tokens",
    "latency",
    "propensity",
    "timestamp",
)
_SPLITS = ("train", "test")
#: Observations that partial data (an ``observed`` mask) may lack on observed cells too.
_PARTIAL_MAY_MISS = ("cost", "input_tokens", "output_tokens", "latency")
_SHOWN = 3  # offending rows named in a message


@dataclass(frozen=True)
class _Allowed:
    """The values a numeric field may hold: finite, in ``[low, high]`` (``(low, high]`` when
    ``open_low``); NaN too when ``missing_ok`` (it then means "not known")."""

    low: float
    high: float = math.inf
    unit: str = ""
    open_low: bool = False
    missing_ok: bool = False

    def __str__(self) -> str:
        bracket = "(" if self.open_low else "["
        span = (
            f"in {bracket}{self.low:g}, {self.high:g}]"
            if self.high < math.inf
            else f"{'>' if self.open_low else '>='} {self.low:g}"
        )
        missing = " or missing" if self.missing_ok else ""
        return f"finite numbers {span}" + (f" ({self.unit})" if self.unit else "") + missing

    def violated(self, values: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            above = values > self.low if self.open_low else values >= self.low
            ok: np.ndarray = np.isfinite(values) & above & (values <= self.high)
        if self.missing_ok:
            ok |= np.isnan(values)
        return ~ok


_ALLOWED = {
    "quality": _Allowed(0.0, 1.0),
    "cost": _Allowed(0.0, unit="USD per call"),
    "input_tokens": _Allowed(0.0, unit="tokens"),
    "output_tokens": _Allowed(0.0, unit="tokens"),
    "latency": _Allowed(0.0, unit="seconds"),
    "propensity": _Allowed(0.0, 1.0, open_low=True, missing_ok=True),
    "timestamp": _Allowed(0.0, unit="seconds since the epoch", missing_ok=True),
}


def _rows(labels: Iterable[Any]) -> str:
    """``"row 3"`` or ``"rows 3, 8, 9, ..."``."""
    labels = list(labels)
    shown = ", ".join(str(label) for label in labels[:_SHOWN])
    more = ", ..." if len(labels) > _SHOWN else ""
    return f"row {shown}" if len(labels) == 1 else f"rows {shown}{more}"


def _check_values(
    values: np.ndarray, name: str, label: str, locate: Callable[[tuple[int, ...]], str]
) -> None:
    """Raise unless every value is allowed for ``name``; ``locate`` names a cell for the user."""
    allowed = _ALLOWED[name]
    bad = np.argwhere(allowed.violated(values))
    if len(bad):
        cells = [tuple(int(i) for i in cell) for cell in bad[:_SHOWN]]
        shown = ", ".join(f"{locate(c)} ({float(values[c])!r})" for c in cells)
        more = ", ..." if len(bad) > _SHOWN else ""
        count = "1 value is" if len(bad) == 1 else f"{len(bad)} values are"
        raise DataFormatError(f"{label} must be {allowed}; {count} not, first at {shown}{more}.")


def _texts(values: Iterable[Any], name: str) -> list[str]:
    """The entries as strings; a missing one (None, NaN) raises."""
    out = []
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise DataFormatError(f"{name}[{i}] is missing ({value!r}); every entry needs a text.")
        out.append(str(value))
    return out


def _first_repeat(values: Sequence[Any]) -> tuple[int, int] | None:
    """The positions ``(first, second)`` of the first value seen twice, or None."""
    seen: dict[Any, int] = {}
    for i, value in enumerate(values):
        j = seen.setdefault(value, i)
        if j != i:
            return j, i
    return None


@dataclass
class RoutingData:
    """``n`` queries × ``m`` LLMs of observed quality (and optionally cost, tokens, latency).

    Construction validates everything a router relies on (see the module docstring for what is
    allowed) and raises :class:`~mixllm_core.errors.DataFormatError` naming the first bad query
    and LLM. Zero queries are allowed (an empty selection); ``MixLLMRouter.fit`` rejects them.

    Partial feedback (a production log: each query answered by one LLM, or a few) is given by
    ``observed``: the cells it marks False are unobserved, hold NaN in every matrix and are
    never trained on; each LLM's predictors learn from its observed rows only.

    Args:
        queries: The query texts, length ``n``.
        llms: The LLM names, length ``m`` (at least one, unique, non-empty).
        quality: ``(n, m)`` observed quality, finite and in [0, 1].
        cost: ``(n, m)`` observed USD cost per call (finite, >= 0), or None.
        sample_ids: Unique id per query (defaults to the row number).
        tasks: Task label per query, or None.
        split: ``"train"``/``"test"`` per query, or None.
        input_tokens, output_tokens, latency: ``(n, m)`` optional observations, finite and >= 0.
        specs: Prices and limits per LLM, when the data set has them.
        source: Name of the format it came from; ``"synthetic"`` marks generated data.
        observed: ``(n, m)`` bools, False where the LLM did not answer the query; None: all True.
        propensity: ``(n, m)`` probability in (0, 1] with which the logging policy chose the
            LLM (NaN: unknown, counted as 1), or None. Refit and fit weigh rows by its inverse.
        timestamp: ``(n, m)`` when the answer was logged (seconds since the epoch; NaN:
            unknown), or None.

    Example:
        >>> data = RoutingData(["2+2?", "Write a poem."], ["small", "large"], [[1, 1], [0.2, 0.9]])
        >>> data.sample_ids, data.quality.shape
        (['0', '1'], (2, 2))
        >>> RoutingData(["2+2?"], ["small"], [[1.5]])
        Traceback (most recent call last):
        ...
        mixllm_core.errors.DataFormatError: RoutingData.quality must be finite numbers in [0, 1]; 1 value is not, first at query 0 ('0') for LLM 'small' (1.5).
    """

    queries: list[str]
    llms: list[str]
    quality: np.ndarray
    cost: np.ndarray | None = None
    sample_ids: list[str] = field(default_factory=list)
    tasks: list[str] | None = None
    split: list[str] | None = None
    input_tokens: np.ndarray | None = None
    output_tokens: np.ndarray | None = None
    latency: np.ndarray | None = None
    specs: dict[str, LLMSpec] = field(default_factory=dict)
    source: str = "generic"
    observed: np.ndarray | None = None
    propensity: np.ndarray | None = None
    timestamp: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.queries = _texts(self.queries, "queries")
        self.llms = _texts(self.llms, "llms")
        n, m = len(self.queries), len(self.llms)
        if m == 0 or any(not name.strip() for name in self.llms):
            raise DataFormatError(f"llms must be one or more non-empty names, got {self.llms}.")
        if len(set(self.llms)) != m:
            raise DataFormatError(f"LLM names must be unique, got {self.llms}.")
        self.sample_ids = [str(s) for s in self.sample_ids] or [str(i) for i in range(n)]
        if len(self.sample_ids) != n:
            raise DataFormatError(f"sample_ids has {len(self.sample_ids)} entries, expected {n}.")
        repeat = _first_repeat(self.sample_ids)
        if repeat:
            raise DataFormatError(
                f"sample_ids must be unique; {self.sample_ids[repeat[0]]!r} names queries "
                f"{repeat[0]} and {repeat[1]}."
            )
        if self.observed is not None:
            mask = np.asarray(self.observed)
            if mask.shape != (n, m) or mask.dtype != bool:
                raise DataFormatError(
                    f"observed must be a ({n}, {m}) array of bools, got {mask.dtype} {mask.shape}."
                )
            self.observed = None if mask.all() else mask
        for name in _MATRICES:
            value = getattr(self, name)
            if value is not None or name == "quality":
                setattr(self, name, self._matrix(value, name))
        for name in ("tasks", "split"):
            value = getattr(self, name)
            if value is not None:
                value = [str(v) for v in value]
                setattr(self, name, value)
                if len(value) != n:
                    raise DataFormatError(f"{name} has {len(value)} entries, expected {n}.")
        if self.split is not None:
            unknown = sorted(set(self.split) - set(_SPLITS))
            if unknown:
                raise DataFormatError(f"split values must be 'train' or 'test', got {unknown}.")

    def _matrix(self, value: Any, name: str) -> np.ndarray:
        shape = (len(self.queries), len(self.llms))
        try:
            matrix = np.array(value, dtype=float)
        except (TypeError, ValueError) as exc:
            raise DataFormatError(f"{name} must be a {shape} array of numbers: {exc}") from exc
        if matrix.shape != shape:
            raise DataFormatError(
                f"{name} has shape {matrix.shape}, expected {shape} "
                f"({shape[0]} queries × {shape[1]} LLMs)."
            )
        if self.observed is not None:  # unobserved cells hold nothing
            matrix[~self.observed] = np.nan
            filler = 1.0 if name == "propensity" else 0.0
            checked = np.where(self.observed, matrix, filler)
            if name in _PARTIAL_MAY_MISS:  # a log may lack some calls' cost or tokens
                checked = np.where(np.isnan(checked), filler, checked)
        else:
            checked = matrix
        _check_values(checked, name, f"RoutingData.{name}", self._locate)
        return matrix

    def _locate(self, cell: tuple[int, ...]) -> str:
        i, j = cell
        return f"query {i} ({self.sample_ids[i]!r}) for LLM {self.llms[j]!r}"

    def __len__(self) -> int:
        return len(self.queries)

    @property
    def has_tokens(self) -> bool:
        return self.input_tokens is not None and self.output_tokens is not None

    @property
    def is_complete(self) -> bool:
        """Whether every LLM's quality is known for every query (full information)."""
        return self.observed is None

    def observed_rows(self, llm: str) -> np.ndarray:
        """Indices of the queries ``llm`` was observed on (all of them for complete data)."""
        j = self.llms.index(llm)
        if self.observed is None:
            return np.arange(len(self.queries))
        return np.flatnonzero(self.observed[:, j])

    def subset(self, rows: Sequence[int] | np.ndarray) -> RoutingData:
        """The rows ``rows`` (indices), all LLMs."""
        idx = np.asarray(rows, dtype=int)

        def pick(values: list[str] | None) -> list[str] | None:
            return None if values is None else [values[i] for i in idx]

        def pick_matrix(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[idx]

        return replace(
            self,
            queries=[self.queries[i] for i in idx],
            quality=self.quality[idx],
            cost=pick_matrix(self.cost),
            sample_ids=[self.sample_ids[i] for i in idx],
            tasks=pick(self.tasks),
            split=pick(self.split),
            input_tokens=pick_matrix(self.input_tokens),
            output_tokens=pick_matrix(self.output_tokens),
            latency=pick_matrix(self.latency),
            observed=pick_matrix(self.observed),
            propensity=pick_matrix(self.propensity),
            timestamp=pick_matrix(self.timestamp),
        )

    def select_llms(self, names: Sequence[str]) -> RoutingData:
        """The same queries for the LLMs ``names`` only, in that order."""
        missing = [n for n in names if n not in self.llms]
        if missing:
            raise DataFormatError(f"LLMs {missing} are not in the data; it has {self.llms}.")
        cols = [self.llms.index(n) for n in names]

        def pick(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[:, cols]

        return replace(
            self,
            llms=list(names),
            quality=self.quality[:, cols],
            cost=pick(self.cost),
            input_tokens=pick(self.input_tokens),
            output_tokens=pick(self.output_tokens),
            latency=pick(self.latency),
            specs={n: s for n, s in self.specs.items() if n in names},
            observed=pick(self.observed),
            propensity=pick(self.propensity),
            timestamp=pick(self.timestamp),
        )

    def concat(self, other: RoutingData) -> RoutingData:
        """These queries followed by ``other``'s, over the union of both LLM lists.

        A (query, LLM) pair one side does not have is unobserved; a matrix one side lacks is
        missing (NaN) on its rows. Sample ids must stay unique.

        Example:
            >>> a = RoutingData(["q1"], ["x", "y"], [[1.0, 0.0]])
            >>> b = RoutingData(["q2"], ["y"], [[1.0]], sample_ids=["log-1"])
            >>> both = a.concat(b)
            >>> both.llms, both.observed.tolist()
            (['x', 'y'], [[True, True], [False, True]])
        """
        llms = list(dict.fromkeys([*self.llms, *other.llms]))

        def spread(part: RoutingData, values: np.ndarray | None, fill: float) -> np.ndarray:
            out = np.full((len(part), len(llms)), fill)
            if values is not None:
                out[:, [llms.index(n) for n in part.llms]] = values
            return out

        def mask(part: RoutingData) -> np.ndarray:
            seen = np.ones((len(part), len(part.llms)), bool)
            return spread(part, seen if part.observed is None else part.observed, 0).astype(bool)

        quality = np.vstack(
            [spread(self, self.quality, np.nan), spread(other, other.quality, np.nan)]
        )
        matrices: dict[str, np.ndarray | None] = {}
        for name in _MATRICES[1:]:
            a, b = getattr(self, name), getattr(other, name)
            if a is not None or b is not None:
                matrices[name] = np.vstack([spread(self, a, np.nan), spread(other, b, np.nan)])
        tasks = None
        if self.tasks is not None or other.tasks is not None:
            tasks = (self.tasks or [""] * len(self)) + (other.tasks or [""] * len(other))
        split = None
        if self.split is not None or other.split is not None:
            split = (self.split or ["train"] * len(self)) + (other.split or ["train"] * len(other))
        return RoutingData(
            queries=self.queries + other.queries,
            llms=llms,
            quality=quality,
            sample_ids=self.sample_ids + other.sample_ids,
            tasks=tasks,
            split=split,
            specs={**self.specs, **other.specs},
            source=self.source if self.source == other.source else "mixed",
            observed=np.vstack([mask(self), mask(other)]),
            **matrices,
        )

    def train_test_split(
        self, test_size: float = 0.2, seed: int = 0
    ) -> tuple[RoutingData, RoutingData]:
        """Rows marked ``split == "test"`` when there are any, else a seeded random split."""
        if self.split is not None and "test" in self.split:
            train = [i for i, s in enumerate(self.split) if s == "train"]
            test = [i for i, s in enumerate(self.split) if s == "test"]
            return self.subset(train), self.subset(test)
        if not 0 < test_size < 1:
            raise DataFormatError(f"test_size must be in (0, 1), got {test_size!r}.")
        perm = np.random.default_rng(seed).permutation(len(self))
        n_test = int(round(test_size * len(self)))
        return self.subset(np.sort(perm[n_test:])), self.subset(np.sort(perm[:n_test]))

    def mean_cost(self) -> np.ndarray:
        """Per-LLM mean observed cost (NaN where the data has no cost)."""
        out = np.full(len(self.llms), np.nan)
        if self.cost is None:
            return out
        known = np.isfinite(self.cost)
        counts = known.sum(axis=0)
        sums = np.where(known, self.cost, 0.0).sum(axis=0)
        np.divide(sums, counts, out=out, where=counts > 0)
        return out


# --------------------------------------------------------------------------- file reading
