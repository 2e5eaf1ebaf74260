"""`RoutingModel`: everything one route reads, as one immutable value.

A :class:`~mixllm_core.MixLLMRouter` keeps its learned state in a single attribute holding a
:class:`RoutingModel`. A route reads that attribute once and uses nothing else of the router's
learned state, so it never sees a half-applied change and never takes a lock. Every change
(``fit``, ``refit``, ``add_llm``, ``remove_llm``, feedback, a new encoder) builds a new model and
publishes it with one assignment; what it does not change is shared, not copied.

The model has two parts that change at different rates:

- :class:`PoolModel`: the pool, each LLM's offline quality and cost predictors, their training
  sets, the encoder and the reference cost. Replaced by ``fit``, ``refit`` and pool changes; it
  compiles its :class:`~mixllm_core.predictors.PredictorBank` once, on first use.
- :class:`~mixllm_core.online.HeadsTable`: the online heads, replaced by every feedback.

:func:`fit_llm` and :func:`refit_quality` train the predictors a new pool model holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TypeVar

import numpy as np

from .data import ASSUMED_OUTPUT_TOKENS, REFERENCE_INPUT_TOKENS, RoutingData
from .encoders import AdaptableEncoder, QueryEncoder
from .errors import ConfigError, EmptyPoolError
from .log import LoggedFeedback
from .online import HeadsTable
from .persistence.state import LLMState, RouterState
from .predictors import CostPredictor, PredictorBank, QualityPredictor, cost_features
from .spec import LLMSpec
from .text import estimate_tokens

__all__ = ["PoolModel", "RoutingModel", "fit_llm", "prior_quality", "read_only", "refit_quality"]

Training = tuple[np.ndarray, np.ndarray]


def read_only(
    train: Training, seen: dict[int, tuple[np.ndarray, np.ndarray]] | None = None
) -> Training:
    """Read-only views of a training set ``(X, y)``; with ``seen`` (kept across calls), one
    view per array shared between calls (the LLMs of one fit share ``X``)."""
    seen = {} if seen is None else seen
    out = []
    for a in train:
        entry = seen.get(id(a))
        if entry is None or entry[0] is not a:  # an id is reused once its array is freed
            view = np.asarray(a).view()
            view.flags.writeable = False
            entry = seen[id(a)] = (a, view)  # keeps ``a`` alive, so its id stays its own
        out.append(entry[1])
    return out[0], out[1]


def prior_quality(
    specs: Mapping[str, LLMSpec], trained: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Price-aware prior quality for LLMs without history.

    With trained LLMs in the pool (``trained``: name → mean observed quality), the prior is a
    least-squares line of mean quality on log price through them, so a newcomer starts where LLMs
    of its price class stand. Without any, a pricier LLM is simply expected to answer better.

    Example:
        >>> prior_quality({"cheap": LLMSpec("cheap", 0.1, 0.1), "dear": LLMSpec("dear", 5, 15)})
        {'cheap': 0.4, 'dear': 0.8}
    """
    logs = {n: float(np.log1p(s.input_price + 3 * s.output_price)) for n, s in specs.items()}
    trained = {n: q for n, q in (trained or {}).items() if n in logs}
    if len(trained) >= 2 and np.ptp([logs[n] for n in trained]) > 1e-9:
        slope, intercept = np.polyfit([logs[n] for n in trained], list(trained.values()), 1)
        return {n: float(np.clip(intercept + slope * v, 0.05, 0.95)) for n, v in logs.items()}
    lo, hi = min(logs.values(), default=0.0), max(logs.values(), default=0.0)
    if hi - lo < 1e-12:
        return {n: 0.5 for n in logs}
    return {n: 0.4 + 0.4 * (v - lo) / (hi - lo) for n, v in logs.items()}


T = TypeVar("T")


def _drop(mapping: Mapping[str, T], name: str) -> dict[str, T]:
    return {n: v for n, v in mapping.items() if n != name}


def _prior_cost(spec: LLMSpec) -> CostPredictor:
    return CostPredictor(
        "prior",
        input_price=spec.input_price,
        output_price=spec.output_price,
        output_tokens=ASSUMED_OUTPUT_TOKENS,
    )


@dataclass(frozen=True, eq=False)  # holds estimators: compared by identity
class PoolModel:
    """The pool and what was learned offline about it; every ``with_``/``without_`` is a copy.

    Args:
        specs: The pool, in order.
        quality, cost: Each pool LLM's predictors (never changed once the model holds them).
        train: The offline training sets ``(X, y)`` of the LLMs fit on data (read-only arrays).
        encoder: The encoder the predictors read.
        c_ref: The reference cost learned by ``fit`` (None: derived from the pool's prices).
        retired: Names of LLMs that were removed from the pool (excluding one is not an error).

    Example:
        >>> from mixllm_core.testing import HashingEncoder
        >>> pool = PoolModel.cold([LLMSpec("a"), LLMSpec("b", 1.0, 2.0)], HashingEncoder())
        >>> pool.names, pool.without_llm("a").retired
        (('a', 'b'), frozenset({'a'}))
    """

    specs: Mapping[str, LLMSpec]
    quality: Mapping[str, QualityPredictor]
    cost: Mapping[str, CostPredictor]
    train: Mapping[str, Training]
    encoder: QueryEncoder
    c_ref: float | None = None
    retired: frozenset[str] = frozenset()
    _bank: PredictorBank | None = field(default=None, init=False, repr=False)
    _dims: frozenset[int] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("specs", "quality", "cost", "train"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        names = list(self.specs)
        if (
            list(self.quality) != names
            or list(self.cost) != names
            or not set(self.train) <= set(names)
        ):
            raise ConfigError(
                f"A PoolModel needs one quality and one cost predictor per pool LLM {names}; got "
                f"{list(self.quality)} and {list(self.cost)} (training sets {list(self.train)})."
            )

    @classmethod
    def cold(cls, specs: list[LLMSpec], encoder: QueryEncoder, kind: str = "linear") -> PoolModel:
        """A pool that has seen no data: price-aware prior quality, price-list costs."""
        priors = prior_quality({s.name: s for s in specs})
        return cls(
            {s.name: s for s in specs},
            {s.name: QualityPredictor.prior(priors[s.name], kind) for s in specs},
            {s.name: _prior_cost(s) for s in specs},
            {},
            encoder,
        )

    # ------------------------------------------------------------------ derived, cached
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.specs)

    @property
    def bank(self) -> PredictorBank:
        """All predictors compiled for the hot path, built on first use (then shared)."""
        bank = self._bank
        if bank is None:
            if not self.specs:
                raise EmptyPoolError("The pool is empty: add an LLM or fit on data first.")
            bank = PredictorBank(list(self.quality.values()), list(self.cost.values()))
            object.__setattr__(self, "_bank", bank)  # two routes may build it at once: equal
        return bank

    @property
    def fitted_dims(self) -> frozenset[int]:
        """Representation sizes the fitted quality predictors read (empty before any fit)."""
        dims = self._dims
        if dims is None:
            dims = frozenset(q.n_features_in_ for q in self.quality.values() if q.n_samples_ > 0)
            object.__setattr__(self, "_dims", dims)
        return dims

    @property
    def is_fitted(self) -> bool:
        """Whether any LLM's quality predictor was fit on data."""
        return bool(self.fitted_dims)

    def features(
        self, texts: Sequence[str], *, show_progress: bool = False, check: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Representations ``X`` (float32) and cost features ``F`` of ``texts``.

        Raises:
            ConfigError: with ``check``, the encoder's vectors do not have the size the fitted
                predictors read.
        """
        X = np.asarray(self.encoder.encode(list(texts), show_progress=show_progress), np.float32)
        dims = self.fitted_dims
        if check and dims and dims != {X.shape[1]}:
            raise ConfigError(
                f"The encoder gives {X.shape[1]}-dimensional vectors but the predictors were fit on "
                f"{sorted(dims)}-dimensional ones; use the encoder the router was trained with."
            )
        in_tok = np.array([estimate_tokens(t) for t in texts], dtype=float)
        return X, cost_features(X, in_tok)

    def reference_cost(self) -> float:
        """Reference cost normalising ĉ; it never depends on the queries being routed.

        ``c_ref`` once fitted on data with costs; otherwise the priciest pool LLM's cost for a
        reference call (``REFERENCE_INPUT_TOKENS`` in, ``ASSUMED_OUTPUT_TOKENS`` out); 1.0 when
        every LLM is free.
        """
        if self.c_ref is not None and self.c_ref > 0:
            return self.c_ref
        pool = [s.cost(REFERENCE_INPUT_TOKENS, ASSUMED_OUTPUT_TOKENS) for s in self.specs.values()]
        top = max(pool, default=0.0)
        return top if top > 0 else 1.0

    # ------------------------------------------------------------------ changed copies
    def with_llm(
        self,
        spec: LLMSpec,
        quality: QualityPredictor,
        cost: CostPredictor,
        train: Training | None = None,
    ) -> PoolModel:
        """This pool plus ``spec`` with the given predictors (or with them replaced)."""
        trains = dict(self.train)
        trains.pop(spec.name, None)
        if train is not None:
            trains[spec.name] = train
        return replace(
            self,
            specs={**self.specs, spec.name: spec},
            quality={**self.quality, spec.name: quality},
            cost={**self.cost, spec.name: cost},
            train=trains,
        )

    def with_prior_llm(self, spec: LLMSpec, kind: str) -> PoolModel:
        """This pool plus ``spec`` starting from the price-aware prior.

        The prior of every LLM that has no data yet is derived again from the new pool.
        """
        specs = {**self.specs, spec.name: spec}
        trained = {n: q.mean_ for n, q in self.quality.items() if q.n_samples_ > 0}
        priors = prior_quality(specs, trained)
        quality = dict(self.quality)
        for name, q0 in priors.items():
            if name == spec.name or name not in quality or quality[name].n_samples_ == 0:
                quality[name] = QualityPredictor.prior(q0, kind)
        quality = {n: quality[n] for n in specs}
        cost = {**self.cost, spec.name: _prior_cost(spec)}
        train = {n: t for n, t in self.train.items() if n != spec.name}
        return replace(self, specs=specs, quality=quality, cost=cost, train=train)

    def without_llm(self, name: str) -> PoolModel:
        """This pool without ``name`` (which then counts as retired)."""
        return replace(
            self,
            specs=_drop(self.specs, name),
            quality=_drop(self.quality, name),
            cost=_drop(self.cost, name),
            train=_drop(self.train, name),
            retired=self.retired | {name},
        )

    def with_quality(self, quality: Mapping[str, QualityPredictor]) -> PoolModel:
        """This pool with the quality predictors of some LLMs replaced."""
        return replace(self, quality={n: quality.get(n, q) for n, q in self.quality.items()})

    def with_encoder(self, encoder: QueryEncoder) -> PoolModel:
        """This pool read through another encoder."""
        return replace(self, encoder=encoder)


@dataclass(frozen=True, eq=False)
class RoutingModel:
    """What one route reads: the pool model, the online heads and the last feedback included.

    Invariant: ``heads`` is None or holds a head for every pool LLM.

    Example:
        >>> from mixllm_core.testing import HashingEncoder
        >>> model = RoutingModel(PoolModel.cold([LLMSpec("a")], HashingEncoder()), None, 0)
        >>> model.pool.reference_cost()
        1.0
    """

    pool: PoolModel
    heads: HeadsTable | None
    feedback_seq: int

    def __post_init__(self) -> None:
        heads = self.heads
        if heads is not None and any(n not in heads for n in self.pool.specs):
            missing = [n for n in self.pool.specs if n not in heads]
            raise ConfigError(f"The online heads lack pool LLMs {missing}.")

    def llm_states(self) -> tuple[LLMState, ...]:
        """Each pool LLM as a :class:`~mixllm_core.persistence.state.LLMState` (estimators and read-only
        training arrays shared, not copied)."""
        pool = self.pool
        return tuple(
            LLMState(spec, pool.quality[n].get_state(), pool.cost[n].get_state(), pool.train.get(n))
            for n, spec in pool.specs.items()
        )

    @classmethod
    def from_state(cls, state: RouterState, encoder: QueryEncoder) -> RoutingModel:
        """The model a :class:`~mixllm_core.persistence.state.RouterState` describes, read through
        ``encoder``."""
        seen: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        pool = PoolModel(
            {llm.name: llm.spec for llm in state.llms},
            {llm.name: QualityPredictor.from_state(llm.quality) for llm in state.llms},
            {llm.name: CostPredictor.from_state(llm.cost) for llm in state.llms},
            {llm.name: read_only(llm.train, seen) for llm in state.llms if llm.train is not None},
            encoder,
            state.c_ref,
        )
        heads = None if state.heads is None else HeadsTable.from_state(state.heads)
        return cls(pool, heads, state.feedback_seq)


def fit_llm(
    spec: LLMSpec,
    X: np.ndarray,
    F: np.ndarray,
    data: RoutingData,
    quality: QualityPredictor,
    seen: dict[int, tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[QualityPredictor, CostPredictor, Training]:
    """Fit ``quality`` and a cost predictor on ``spec``'s column of ``data`` (features ``X``,
    ``F``); returns them with the training set to keep, read-only (``X`` is not copied; pass
    one ``seen`` for all LLMs of one fit and they share one view of it)."""
    j = data.llms.index(spec.name)
    y = np.asarray(data.quality[:, j], dtype=float)
    quality.fit(X, y)
    out_tok = None if data.output_tokens is None else data.output_tokens[:, j]
    priced = bool(spec.input_price or spec.output_price)
    if priced and data.has_tokens and out_tok is not None and np.isfinite(out_tok).any():
        cost = CostPredictor(
            "tokens", input_price=spec.input_price, output_price=spec.output_price
        ).fit(F, out_tok)
    elif data.cost is not None and np.isfinite(data.cost[:, j]).any():
        cost = CostPredictor("regress").fit(F, data.cost[:, j])
    else:
        cost = _prior_cost(spec)
    return quality, cost, read_only((X, y), seen)


def refit_quality(
    pool: PoolModel,
    feedback: Iterable[LoggedFeedback],
    new_quality: Callable[[], QualityPredictor],
    *,
    min_feedback: int,
    show_progress: bool = False,
    chunk_rows: int = 2000,
) -> tuple[dict[str, tuple[QualityPredictor, int]], int]:
    """New quality predictors for ``pool``'s LLMs from their training sets plus ``feedback``,
    with the number of feedback records each used, and the highest feedback id read.

    ``feedback`` is read ``chunk_rows`` at a time (a database log streams it a page at a time):
    what stays in memory is one float32 representation and one score per usable record, not
    the records. An LLM with offline data is refit on any feedback; one without needs
    ``min_feedback`` records. With an encoder that ``fit`` adapts, the feedback queries are
    embedded again (a log that keeps no prompts can only offer the representation logged at
    the time).
    """
    per_llm: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {}
    cut = 0
    adapt = isinstance(pool.encoder, AdaptableEncoder)
    it = iter(feedback)
    while True:
        chunk = [fb for _, fb in zip(range(chunk_rows), it)]
        if not chunk:
            break
        cut = max(cut, max(fb.seq for fb in chunk))
        usable = [fb for fb in chunk if fb.llm in pool.specs]
        if not usable:
            continue
        X = np.stack([fb.x for fb in usable]).astype(np.float32)
        stored = [i for i, fb in enumerate(usable) if fb.query is not None]
        if stored and adapt:
            X[stored] = pool.features([usable[i].query or "" for i in stored])[0]
        for name in dict.fromkeys(fb.llm for fb in usable):
            rows = [i for i, fb in enumerate(usable) if fb.llm == name]
            xs, ys = per_llm.setdefault(name, ([], []))
            xs.append(X[rows])
            ys.append(np.array([usable[i].score for i in rows], dtype=float))
    counts = {n: sum(len(y) for y in ys) for n, (_, ys) in per_llm.items()}
    names = [n for n in per_llm if n in pool.train or counts[n] >= min_feedback]
    iterator: Iterable[str] = names
    if show_progress:
        from tqdm.auto import tqdm

        iterator = tqdm(names, desc="refitting", unit="LLM")
    fitted = {}
    for name in iterator:
        xs, ys = per_llm.pop(name)
        if name in pool.train:
            xs.insert(0, pool.train[name][0])
            ys.insert(0, pool.train[name][1])
        Xf, yf = np.vstack(xs).astype(np.float32), np.concatenate(ys)
        del xs, ys
        fitted[name] = (new_quality().fit(Xf, yf), counts[name])
    return fitted, cut
