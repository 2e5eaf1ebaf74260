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
- :class:`~mixllm_core.memory.OutcomeMemory`: the qualities observed per query and LLM (the
  training rows, then every feedback), replaced by every feedback; None when the router's
  memory is off.

:func:`fit_llm` and :func:`refit_quality` train the predictors a new pool model holds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TypeVar

import numpy as np

from .data import ASSUMED_OUTPUT_TOKENS, REFERENCE_INPUT_TOKENS, RoutingData
from .encoders import AdaptableEncoder, QueryEncoder, TaskHintEncoder
from .encoders.base import check_task_hints
from .errors import ConfigError, DataFormatError, EmptyPoolError
from .log import LoggedFeedback
from .memory import OutcomeMemory
from .offpolicy import DEFAULT_CLIP, dr_gain, ips_weights
from .online import HeadsTable, training_prior
from .persistence.state import LLMState, RouterState
from .predictors import (
    CostPredictor,
    PredictorBank,
    QualityPredictor,
    cost_features,
    infer_prices,
)
from .spec import LLMSpec
from .text import estimate_tokens

__all__ = [
    "PoolModel",
    "RefitGuard",
    "RefitOutcome",
    "RoutingModel",
    "fit_cost",
    "fit_llm",
    "prior_quality",
    "read_only",
    "refit_quality",
]

_log = logging.getLogger("mixllm_core.refit")

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
        data: The routing data ``fit`` learned from (``refit`` learns again from it plus the
            feedback, the encoder's corpus part included); None for a pool read from a file.

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
    data: RoutingData | None = None
    _bank: PredictorBank | None = field(default=None, init=False, repr=False)
    _dims: frozenset[int] | None = field(default=None, init=False, repr=False)
    _windows: np.ndarray | None = field(default=None, init=False, repr=False)
    _priors: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)

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
    def context_windows(self) -> np.ndarray:
        """Each pool LLM's context window in tokens, in pool order (inf: unknown), read-only."""
        windows = self._windows
        if windows is None:
            windows = np.array(
                [
                    math.inf if s.context_window is None else s.context_window
                    for s in self.specs.values()
                ],
                dtype=float,
            )
            windows.flags.writeable = False
            object.__setattr__(self, "_windows", windows)
        return windows

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

    def head_prior(self, name: str, dim: int) -> np.ndarray | None:
        """The ``A⁻¹`` an online head of ``name`` starts from: its training rows as rows of
        residual 0 (:func:`~mixllm_core.online.training_prior`), computed once per pool; None
        for an LLM without training rows of ``dim`` columns (its head starts from ``ridge·I``)."""
        prior = self._priors.get(name)
        if prior is None:
            train = self.train.get(name)
            if train is None or train[0].ndim != 2 or train[0].shape[1] != dim:
                return None
            prior = training_prior(train[0])
            self._priors[name] = prior  # two callers may compute it at once: equal
        return prior if prior.shape[0] == dim + 1 else None

    def warm_head_priors(self) -> None:
        """Compute every LLM's :meth:`head_prior` now (cached), so that the first feedback after
        a fit, refit or load does not compute it while holding the router's lock."""
        for name, train in self.train.items():
            if train is not None and train[0].ndim == 2:
                self.head_prior(name, int(train[0].shape[1]))

    @property
    def is_fitted(self) -> bool:
        """Whether any LLM's quality predictor was fit on data."""
        return bool(self.fitted_dims)

    def features(
        self,
        texts: Sequence[str],
        *,
        show_progress: bool = False,
        check: bool = True,
        tasks: Sequence[str | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Representations ``X`` (float32) and cost features ``F`` of ``texts``; ``tasks``: a
        task hint (or None) per text, for an encoder with task features (:class:`TaskHintEncoder`).

        Raises:
            ConfigError: with ``check``, the encoder's vectors do not have the size the fitted
                predictors read; a task hint that the encoder cannot take (see
                :func:`~mixllm_core.encoders.base.check_task_hints`).
        """
        hints = check_task_hints(tasks, len(texts))
        if hints is None:  # no hint: exactly the encoder's own output
            X = self.encoder.encode(list(texts), show_progress=show_progress)
        elif isinstance(self.encoder, TaskHintEncoder):
            X = self.encoder.encode(list(texts), show_progress=show_progress, tasks=hints)
        else:
            raise ConfigError(
                f"A task hint needs an encoder with task features (a TaggedEncoder in a 'tags' "
                f"mode, as the default encoder once fitted on data); this router's encoder is a "
                f"{type(self.encoder).__name__}."
            )
        X = np.asarray(X, np.float32)
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
    """What one route reads: the pool model, the online heads, the last feedback included and
    the memory of observed outcomes (None: off).

    Invariant: ``heads`` is None or holds a head for every pool LLM; ``heads`` and ``memory``
    hold the same feedback (every applied feedback up to ``feedback_seq`` since ``fit``).

    Example:
        >>> from mixllm_core.testing import HashingEncoder
        >>> model = RoutingModel(PoolModel.cold([LLMSpec("a")], HashingEncoder()), None, 0)
        >>> model.pool.reference_cost()
        1.0
    """

    pool: PoolModel
    heads: HeadsTable | None
    feedback_seq: int
    memory: OutcomeMemory | None = None

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
        memory = None
        if state.use_memory:  # a state saved before the memory existed starts with an empty one
            memory = state.memory or OutcomeMemory.empty(pool.names)
        return cls(pool, heads, state.feedback_seq, memory)


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
    if not data.is_complete:  # partial feedback: this LLM's observed rows only
        rows = data.observed_rows(spec.name)
        if len(rows) == 0:
            raise DataFormatError(f"The data has no observed quality for LLM {spec.name!r}.")
        X, F, data = X[rows], F[rows], data.subset(rows)
    y = np.asarray(data.quality[:, j], dtype=float)
    weights = None if data.propensity is None else ips_weights(data.propensity[:, j])
    quality.fit(X, y, sample_weight=weights)
    return quality, fit_cost(spec, F, data), read_only((X, y), seen)


def _column(matrix: np.ndarray | None, j: int) -> np.ndarray | None:
    """Column ``j`` of ``matrix``, or None when there is none or it holds no finite value."""
    if matrix is None or not np.isfinite(matrix[:, j]).any():
        return None
    return np.asarray(matrix[:, j], dtype=float)


def fit_cost(spec: LLMSpec, F: np.ndarray, data: RoutingData) -> CostPredictor:
    """``spec``'s cost predictor from its column of ``data`` (cost features ``F``).

    The input tokens are known when a query is routed, so only the output length is learned
    and the cost is ``input tokens × input price + predicted output tokens × output price``:

    - with the LLM's prices (``spec.output_price > 0``: a price list gives both), the observed
      output tokens, or without them those that explain the observed cost, ``(cost − input
      tokens × input price) / output price`` clipped at 0;
    - without an output price but with observed costs, the prices are inferred from the costs
      (:func:`~mixllm_core.predictors.infer_prices`: non-negative least squares on the input
      and output tokens, or on the input tokens and an average answer when the data has no
      output tokens). An input price alone is taken as the per-input-token price that the
      RouterBench loader derives from costs, not as a list price;
    - otherwise the price-list prior with :data:`~mixllm_core.data.ASSUMED_OUTPUT_TOKENS` out.
    """
    j = data.llms.index(spec.name)
    cost = _column(data.cost, j)
    out_tok = _column(data.output_tokens, j)
    in_tok = _column(data.input_tokens, j)
    in_tok = np.expm1(F[:, 0]) if in_tok is None else np.where(np.isfinite(in_tok), in_tok, 0.0)
    if spec.output_price > 0:
        p_in, p_out = spec.input_price, spec.output_price
        if out_tok is None and cost is not None:
            out_tok = np.maximum((cost - in_tok * p_in / 1e6) / (p_out / 1e6), 0.0)
    elif cost is not None:
        p_in, p_out = infer_prices(
            cost, in_tok, out_tok, assumed_output_tokens=ASSUMED_OUTPUT_TOKENS
        )
        if out_tok is None:  # output "tokens" of an average answer that explain each cost
            spent = np.maximum(cost - in_tok * p_in / 1e6, 0.0)
            out_tok = (
                spent / (p_out / 1e6) if p_out > 0 else np.full_like(cost, ASSUMED_OUTPUT_TOKENS)
            )
    else:
        return _prior_cost(spec)
    if out_tok is None:
        return _prior_cost(spec)
    return CostPredictor("tokens", input_price=p_in, output_price=p_out).fit(F, out_tok)


def refit_quality(
    pool: PoolModel,
    feedback: Iterable[LoggedFeedback],
    new_quality: Callable[[], QualityPredictor],
    *,
    min_feedback: int,
    show_progress: bool = False,
    clip: float = DEFAULT_CLIP,
    chunk_rows: int = 2000,
) -> tuple[dict[str, tuple[QualityPredictor, int]], int]:
    """New quality predictors for ``pool``'s LLMs from their training sets plus ``feedback``,
    with the number of feedback records each used, and the highest feedback id read.

    ``feedback`` is read ``chunk_rows`` at a time (a database log streams it a page at a time):
    what stays in memory is one float32 representation, one score and one propensity per usable
    record, not the records. Each feedback row is weighted by its inverse propensity (clipped at
    ``clip`` and self-normalised: :func:`~mixllm_core.offpolicy.ips_weights`); training rows
    weigh 1. An LLM with offline data is refit on any feedback; one without needs
    ``min_feedback`` records. With an encoder that ``fit`` adapts, the feedback queries are
    embedded again (a log that keeps no prompts can only offer the representation logged at
    the time).
    """
    per_llm: dict[str, tuple[list[np.ndarray], list[np.ndarray], list[float | None]]] = {}
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
            xs, ys, ps = per_llm.setdefault(name, ([], [], []))
            xs.append(X[rows])
            ys.append(np.array([usable[i].score for i in rows], dtype=float))
            ps.extend(usable[i].propensity for i in rows)
    counts = {n: len(ps) for n, (_, _, ps) in per_llm.items()}
    names = [n for n in per_llm if n in pool.train or counts[n] >= min_feedback]
    iterator: Iterable[str] = names
    if show_progress:
        from tqdm.auto import tqdm

        iterator = tqdm(names, desc="refitting", unit="LLM")
    fitted = {}
    for name in iterator:
        xs, ys, ps = per_llm.pop(name)
        ws = [ips_weights(ps, clip=clip)]
        if name in pool.train:
            xs.insert(0, pool.train[name][0])
            ys.insert(0, pool.train[name][1])
            ws.insert(0, np.ones(len(pool.train[name][1])))
        Xf, yf, wf = np.vstack(xs).astype(np.float32), np.concatenate(ys), np.concatenate(ws)
        del xs, ys
        fitted[name] = (new_quality().fit(Xf, yf, sample_weight=wf), counts[name])
    return fitted, cut


def _feedback_block(
    pool: PoolModel, feedback: Sequence[LoggedFeedback]
) -> tuple[list[str], dict[str, list[tuple[int, float, float | None]]]] | None:
    """The texts of ``feedback`` on pool LLMs, with per LLM (row, score, propensity); None when
    a record kept no prompt (its query cannot be embedded again)."""
    texts: list[str] = []
    per_llm: dict[str, list[tuple[int, float, float | None]]] = {}
    for fb in feedback:
        if fb.llm not in pool.specs:
            continue
        if fb.query is None:
            return None
        per_llm.setdefault(fb.llm, []).append((len(texts), fb.score, fb.propensity))
        texts.append(fb.query)
    return texts, per_llm


def _feedback_helps(
    new_quality: Callable[[], QualityPredictor],
    training: tuple[np.ndarray, np.ndarray, np.ndarray],
    X_f: np.ndarray,
    y_f: np.ndarray,
    w_f: np.ndarray,
    base: QualityPredictor,
    folds: int = 3,
) -> bool:
    """Whether adding the feedback ``(X_f, y_f)`` (weights ``w_f``) to ``training`` predicts
    held-out feedback better than ``base``, fit on ``training`` alone (k-fold, weighted squared
    error)."""
    n = len(y_f)
    if n < 2 * folds:
        return False
    X_o, y_o, w_o = training
    fold = np.arange(n) % folds
    err_new = 0.0
    for k in range(folds):
        held = fold == k
        model = new_quality().fit(
            np.vstack([X_o, X_f[~held]]),
            np.concatenate([y_o, y_f[~held]]),
            sample_weight=np.concatenate([w_o, w_f[~held]]),
        )
        err_new += float(np.sum(w_f[held] * (model.predict(X_f[held]) - y_f[held]) ** 2))
    err_base = float(np.sum(w_f * (base.predict(X_f) - y_f) ** 2))
    return err_new < err_base


def _candidate(
    pool: PoolModel,
    feedback: Sequence[LoggedFeedback],
    new_quality: Callable[[], QualityPredictor],
    *,
    min_feedback: int,
    clip: float = DEFAULT_CLIP,
    validate: bool = True,
) -> tuple[PoolModel, dict[str, int]] | None:
    """Everything ``fit`` learned, learned again from ``pool.data`` plus ``feedback``.

    The encoder's corpus part is adapted to the offline and the feedback queries together, every
    query is embedded again, and each LLM's quality predictor is fit on its offline rows plus
    its feedback, each feedback row weighted by its inverse propensity (clipped at ``clip``,
    self-normalised: see :func:`~mixllm_core.offpolicy.ips_weights`); cost predictors are fit
    again on the offline rows. An LLM without offline data needs ``min_feedback`` records, or
    keeps what it has. With ``validate``, an LLM with training rows takes its feedback only when
    that lowers the error on held-out feedback (3-fold, squared error weighted by the same inverse
    propensities, against the predictor fit on its training rows alone): a refit never trades
    a good offline predictor for one that selection-biased feedback pulled off; the count of
    such an LLM is 0. Returns the new pool with the feedback count per refit LLM, or None when
    this is not possible (no offline data kept, an LLM trained on data the pool does not hold,
    or feedback whose prompt was not stored): :func:`refit_quality` is then the way.
    """
    data = pool.data
    if data is None or not set(pool.train) <= set(data.llms):
        return None
    block = _feedback_block(pool, feedback)
    if block is None:
        return None
    fb_texts, per_llm = block
    texts = list(data.queries) + fb_texts
    encoder = pool.encoder
    if isinstance(encoder, AdaptableEncoder):
        encoder = encoder.adapted(texts)
    X_all, F_all = pool.with_encoder(encoder).features(texts, check=False)
    n_off = len(data)
    X_off, F_off = X_all[:n_off], F_all[:n_off]
    quality, cost, train = dict(pool.quality), dict(pool.cost), {}
    counts: dict[str, int] = {}
    seen: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for name, spec in pool.specs.items():
        obs = per_llm.get(name, [])
        base = None
        if name in pool.train:
            base, cost[name], (X_o, y_o) = fit_llm(spec, X_off, F_off, data, new_quality(), seen)
            rows = data.observed_rows(name)
            j = data.llms.index(name)
            w_o = np.ones(len(rows))
            if data.propensity is not None:
                w_o = ips_weights(data.propensity[rows, j], clip=clip)
        elif len(obs) >= min_feedback and obs:
            X_o, y_o, w_o = X_off[:0], np.zeros(0), np.zeros(0)
        else:
            continue
        X_f = X_all[[n_off + i for i, _, _ in obs]]
        y_f = np.array([y for _, y, _ in obs], dtype=float)
        w_f = ips_weights([p for _, _, p in obs], clip=clip)
        training = (X_o, y_o, w_o)
        if (
            base is not None
            and validate
            and not _feedback_helps(new_quality, training, X_f, y_f, w_f, base)
        ):
            quality[name], counts[name] = base, 0  # learned again, on the training rows only
        else:
            Xq = np.vstack([X_o, X_f])
            yq, wq = np.concatenate([y_o, y_f]), np.concatenate([w_o, w_f])
            quality[name], counts[name] = new_quality().fit(Xq, yq, sample_weight=wq), len(obs)
        if name in pool.train:
            train[name] = (X_o, y_o)
    refit = PoolModel(
        pool.specs, quality, cost, train, encoder, pool.c_ref, pool.retired, pool.data
    )
    return refit, counts


#: The λ grid a refit is judged over (the bench's grid, coarser): 0 and 0.01 … 1000.
GUARD_LAMBDAS: tuple[float, ...] = (0.0, *np.round(np.geomspace(0.01, 1000, 41), 6).tolist())


@dataclass(frozen=True)
class RefitGuard:
    """When ``refit`` may replace the current model: an off-policy test on held-out feedback.

    The newest ``holdout`` share of the feedback is held out; a candidate is refit from the
    training data plus the older feedback, and both it and the current model route the held-out
    queries greedily at every λ of ``lambdas``. The doubly robust estimate of the candidate's
    gain in reward ``λ/(1+λ)·quality − 1/(1+λ)·cost/c_ref`` (the router's score), with the
    current model as the direct model and the logged propensities (clipped at ``clip``), must
    exceed ``margin`` standard errors; otherwise refit keeps the current model.

    Args:
        holdout: Share of the feedback (newest first) held out, in (0, 1).
        margin: Standard errors by which the estimated gain must exceed 0 (≥ 0).
        min_holdout: Fewest held-out records a test needs (fewer: refused).
        clip: Floor of the propensities in the estimate.
        lambdas: The λ values the gain is averaged over.
        learn_all: On acceptance, learn the model again from all the feedback (True) or publish
            the tested candidate itself, learned without the held-out feedback (False: the
            model that is published is the one the estimate is about).
        head_margin: When the refit is refused, the online heads face the same test: heads
            learned from the older feedback must route the held-out feedback better than the
            offline model by this many standard errors; then the heads learned from all the
            feedback are kept, otherwise they restart from zero (None: always restart, so a
            refused refit routes exactly as no feedback).

    The margins are strict on purpose: on RouterBench and LLMRouter (docs/dev/learning.md) a
    candidate accepted at 1–2 standard errors still lost AIQ on test rows on one split in five,
    while at 3 no measured split lost; heads kept at 1 standard error (newest 30% held out) lost
    0.39 AIQ points on one split of LLMRouter, hence 2 standard errors of the cross-fitted test.

    Example:
        >>> RefitGuard().margin
        3.0
        >>> RefitGuard(holdout=1.5)
        Traceback (most recent call last):
        ...
        mixllm_core.errors.ConfigError: holdout must be in (0, 1), got 1.5.
    """

    holdout: float = 0.3
    margin: float = 3.0
    min_holdout: int = 30
    clip: float = DEFAULT_CLIP
    lambdas: tuple[float, ...] = GUARD_LAMBDAS
    learn_all: bool = False
    head_margin: float | None = 2.0
    head_folds: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.holdout < 1:
            raise ConfigError(f"holdout must be in (0, 1), got {self.holdout!r}.")
        if not self.margin >= 0:
            raise ConfigError(f"margin must be a number >= 0, got {self.margin!r}.")
        if self.min_holdout < 2:
            raise ConfigError(f"min_holdout must be >= 2, got {self.min_holdout!r}.")
        if not 0 < self.clip <= 1:
            raise ConfigError(f"clip must be in (0, 1], got {self.clip!r}.")
        if not self.lambdas or min(self.lambdas) < 0:
            raise ConfigError(f"lambdas must be non-empty and >= 0, got {self.lambdas!r}.")
        if self.head_folds < 0 or self.head_folds == 1:
            raise ConfigError(f"head_folds must be 0 or >= 2, got {self.head_folds!r}.")
        if self.head_margin is not None and not self.head_margin >= 0:
            raise ConfigError(
                f"head_margin must be None or a number >= 0, got {self.head_margin!r}."
            )


class RefitOutcome(dict[str, int]):
    """What ``refit`` did: the feedback count per refit LLM (the mapping), and the guard's verdict.

    Attributes:
        accepted: Whether the refit model replaced the current one.
        gain: Estimated gain in reward per query of the candidate over the current model on
            the held-out feedback (NaN when not tested).
        stderr: Its standard error.
        n_holdout: Held-out feedback records the test used.
        reason: Why the refit was accepted or refused, in words.
        heads_kept: Whether a refused refit kept the online heads (they passed the guard's
            test of heads, see :class:`RefitGuard`); False when they restarted from zero.
        heads_gain: The heads' estimated gain in that test (NaN when not tested).
        heads_stderr: Its standard error.

    Example:
        >>> r = RefitOutcome({"a": 3}, accepted=True, reason="not guarded")
        >>> r == {"a": 3}, r.accepted
        (True, True)
    """

    def __init__(
        self,
        counts: Mapping[str, int] | None = None,
        *,
        accepted: bool,
        gain: float = float("nan"),
        stderr: float = float("nan"),
        n_holdout: int = 0,
        reason: str = "",
        heads_kept: bool = False,
        heads_gain: float = float("nan"),
        heads_stderr: float = float("nan"),
    ) -> None:
        super().__init__(counts or {})
        self.accepted = accepted
        self.gain = gain
        self.stderr = stderr
        self.n_holdout = n_holdout
        self.reason = reason
        self.heads_kept = heads_kept
        self.heads_gain = heads_gain
        self.heads_stderr = heads_stderr

    def __repr__(self) -> str:
        return (
            f"RefitOutcome({dict(self)!r}, accepted={self.accepted}, gain={self.gain:.4g}, "
            f"stderr={self.stderr:.4g}, n_holdout={self.n_holdout}, reason={self.reason!r}, "
            f"heads_kept={self.heads_kept})"
        )


def offline_predictions(
    pool: PoolModel, X: np.ndarray, F: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``pool``'s offline quality and cost ``(n, m)``, the cost in units of its reference cost."""
    bank = pool.bank
    return bank.predict_quality(X), bank.predict_cost(F) / max(pool.reference_cost(), 1e-12)


def lambda_scores(Q: np.ndarray, C: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    """``(n, m, k)`` reward ``λ/(1+λ)·quality − 1/(1+λ)·cost`` per row, LLM and λ of ``lambdas``
    (what the guards score routing by; ``C`` in units of the reference cost)."""
    wq, wc = lambdas / (1 + lambdas), 1 / (1 + lambdas)
    return np.asarray(wq[None, None, :] * Q[:, :, None] - wc[None, None, :] * C[:, :, None])


def _greedy(pool: PoolModel, X: np.ndarray, F: np.ndarray, lambdas: np.ndarray) -> np.ndarray:
    """``(n, k)`` index of the LLM ``pool``'s offline predictors choose per query and λ."""
    Q, C = offline_predictions(pool, X, F)
    return np.asarray(lambda_scores(Q, C, lambdas).argmax(axis=1), dtype=int)


def _gain(
    pool: PoolModel,
    candidate: PoolModel,
    held: Sequence[LoggedFeedback],
    guard: RefitGuard,
) -> tuple[float, float]:
    """DR estimate (and its standard error) of the reward ``candidate`` gains over ``pool`` on
    ``held``, the current model as the direct model."""
    lambdas = np.asarray(guard.lambdas, dtype=float)
    texts = [fb.query or "" for fb in held]
    X0, F0 = pool.features(texts, check=False)
    Xc, Fc = candidate.features(texts, check=False)
    Q0, C0 = offline_predictions(pool, X0, F0)
    direct = lambda_scores(Q0, C0, lambdas)
    names = list(pool.names)
    logged = np.array([names.index(fb.llm) for fb in held])
    rows = np.arange(len(held))
    score = np.array([fb.score for fb in held], dtype=float)
    reward = lambda_scores(score[:, None], C0[rows, logged][:, None], lambdas)[:, 0, :]
    return dr_gain(
        _greedy(candidate, Xc, Fc, lambdas),
        direct.argmax(axis=1),
        logged,
        reward,
        [fb.propensity for fb in held],
        direct,
        clip=guard.clip,
    )


def refit_pool(
    pool: PoolModel,
    feedback: Sequence[LoggedFeedback],
    new_quality: Callable[[], QualityPredictor],
    *,
    min_feedback: int,
    clip: float = DEFAULT_CLIP,
    validate: bool = True,
    guard: RefitGuard | None = None,
) -> tuple[PoolModel | None, RefitOutcome] | None:
    """Everything ``fit`` learned, learned again from ``pool.data`` plus ``feedback``, if it
    routes better.

    The candidate is learned as :func:`_candidate` says (the encoder's corpus part, then every
    LLM's predictors, the feedback weighted by inverse propensities and validated per LLM).
    With a ``guard`` (see :class:`RefitGuard`) the newest feedback is held out, a candidate is
    learned without it, and it must beat ``pool`` there by the guard's margin in a doubly robust
    estimate of routing reward; only then is it returned (or, with ``guard.learn_all``, the
    candidate learned from all the feedback). A refused refit returns no pool (the caller keeps ``pool`` exactly) with the
    report saying why. Returns None when a whole refit is not possible (no offline data kept,
    an LLM trained on data the pool does not hold, or feedback whose prompt was not stored).
    """
    if pool.data is None or not set(pool.train) <= set(pool.data.llms):
        return None
    usable = sorted((fb for fb in feedback if fb.llm in pool.specs), key=lambda fb: fb.seq)
    if any(fb.query is None for fb in usable):
        return None
    if guard is None:
        whole = _candidate(
            pool, usable, new_quality, min_feedback=min_feedback, clip=clip, validate=validate
        )
        if whole is None:
            return None
        return whole[0], RefitOutcome(whole[1], accepted=True, reason="not guarded")
    n_held = int(round(guard.holdout * len(usable)))
    if n_held < guard.min_holdout:
        report = RefitOutcome(
            accepted=False,
            n_holdout=n_held,
            reason=f"{n_held} held-out feedback records, fewer than {guard.min_holdout}",
        )
        _log.info("refit refused: %s", report.reason)
        return None, report
    older, held = usable[: len(usable) - n_held], usable[len(usable) - n_held :]
    trial = _candidate(
        pool, older, new_quality, min_feedback=min_feedback, clip=clip, validate=validate
    )
    if trial is None:
        return None
    gain, se = _gain(pool, trial[0], held, guard)
    if not (np.isfinite(gain) and gain > guard.margin * (se if np.isfinite(se) else np.inf)):
        report = RefitOutcome(
            accepted=False,
            gain=gain,
            stderr=se,
            n_holdout=n_held,
            reason=f"estimated gain {gain:.4g} is not above {guard.margin:g} x stderr {se:.4g}",
        )
        _log.info("refit refused: %s", report.reason)
        return None, report
    whole = trial
    if guard.learn_all:
        whole = _candidate(
            pool, usable, new_quality, min_feedback=min_feedback, clip=clip, validate=validate
        )
    if whole is None:
        return None
    report = RefitOutcome(
        whole[1],
        accepted=True,
        gain=gain,
        stderr=se,
        n_holdout=n_held,
        reason=f"estimated gain {gain:.4g} is above {guard.margin:g} x stderr {se:.4g}",
    )
    _log.info("refit accepted: %s", report.reason)
    return whole[0], report
