"""`MixLLMRouter`: embed the query, predict every LLM's quality and cost, decide, learn online.

Thread safety: the router's learned state is one immutable
:class:`~mixllm_core.snapshot.RoutingModel` held in one attribute. A route reads it once and takes no lock, so it never fails or waits while
the router learns or its pool changes. Writers (``fit``, ``add_llm``, ``remove_llm``, feedback,
the final swap of ``refit``) take the router's lock, build a new model and publish it with one
assignment; ``refit`` trains its predictors outside that lock.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .calibration import CALIBRATION_GRID, Calibration, check_target, pick_lambda
from .data import RoutingData
from .decision import BudgetTracker, DecisionMaker, DecisionPolicy, RoutingDecision
from .encoders import AdaptableEncoder, QueryEncoder, TaggedEncoder
from .encoders.base import check_task_hints
from .encoders.tagged import default_router_encoder
from .errors import (
    ConfigError,
    DataFormatError,
    EmptyPoolError,
    FeedbackError,
    UnknownLLMError,
)
from .fleet import SyncState, base_of, open_log, published_model
from .head_guard import guard_heads
from .latency import LatencyTracker
from .log import LoggedFeedback, RoutingLog, StatePublisher, show_id
from .memory import OutcomeMemory, check_memory_prior, query_key
from .online import HeadsTable
from .persistence.files import read_state, write_state
from .persistence.state import RouterState
from .predictors import QualityPredictor
from .shared_state import SharedState
from .snapshot import (
    PoolModel,
    RefitGuard,
    RefitOutcome,
    RoutingModel,
    fit_llm,
    refit_pool,
    refit_quality,
)
from .spec import LLMSpec
from .text import Query, estimate_tokens, query_text

__all__ = ["FeedbackResult", "MixLLMRouter"]

#: How many times a route decides when the LLM it chose keeps leaving the pool meanwhile.
_ROUTE_ATTEMPTS = 4

_refit_log = logging.getLogger("mixllm_core.refit")

#: Feedback applied to the online heads while a refit runs: (log seq, LLM, x, residual).
_Late = tuple[int, str, np.ndarray, float]


@dataclass(frozen=True)
class FeedbackResult:
    """What happened to one feedback: ``applied`` is False (with ``reason``) when it was only logged."""

    decision_id: str
    llm: str
    score: float
    applied: bool
    reason: str = ""


_MAX_TOKENS = 2**31 - 1  # what every log's integer column holds


def _check_outcome(
    latency_s: object, cost: object, input_tokens: object, output_tokens: object
) -> None:
    """Raise :class:`ConfigError` for an outcome value outside what is allowed."""
    for name, value, unit in (("latency_s", latency_s, "seconds"), ("cost", cost, "USD")):
        if value is None:
            continue
        try:
            ok = (
                isinstance(value, (int, float, np.integer, np.floating))
                and not isinstance(value, (bool, np.bool_))
                and math.isfinite(value)
                and value >= 0
            )
        except OverflowError:  # an int too large for a float
            ok = False
        if not ok:
            raise ConfigError(
                f"{name} must be None or a finite number >= 0 ({unit}), got {value!r}."
            )
    for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
        if value is not None and (
            isinstance(value, (bool, np.bool_))
            or not isinstance(value, (int, np.integer))
            or not 0 <= value <= _MAX_TOKENS
        ):
            raise ConfigError(
                f"{name} must be None or an int >= 0 and <= {_MAX_TOKENS}, got {value!r}."
            )


def _same_predictor(a: QualityPredictor, b: QualityPredictor) -> bool:
    """Whether ``a`` still stands for what ``b`` learned (a re-derived prior counts as the same)."""
    return a is b or (a.n_samples_ == 0 and b.n_samples_ == 0)


def _context_windows(names: Sequence[str], specs: Mapping[str, LLMSpec]) -> np.ndarray:
    """The context window of each of ``names`` in tokens (inf: unknown)."""
    windows = [specs[n].context_window for n in names]
    return np.array([math.inf if w is None else w for w in windows], dtype=float)


class MixLLMRouter:
    """Routes each query to the LLM with the best trade-off of quality, cost and latency.

    Args:
        llms: The pool, as :class:`LLMSpec` or names. May be empty; ``fit`` takes the data's LLMs.
        encoder: A :class:`QueryEncoder`; defaults to :class:`~mixllm_core.StaticEncoder` (static
            MiniLM token table + a corpus part learned by ``fit``: about 1 ms per query, routing
            quality within 0.5 points of MiniLM, see docs/dev/speed.md) with tag features that
            ``fit`` learns from the data's task labels, or clusters when it has none
            (:func:`~mixllm_core.encoders.tagged.default_router_encoder`). ``SentenceEncoder()`` runs
            MiniLM itself (a few hundred ms per query on two CPU cores).
        quality_model: ``"linear"`` (logistic regression, the default: best AIQ measured on
            RouterBench and LLMRouter), ``"knn"``, ``"rf"`` or ``"mlp"``.
        quality_params: Parameters of the quality model (see :class:`QualityPredictor`).
        policy: The decision rule (:class:`DecisionPolicy`).
        seed: Seeds tie-breaking and the estimators.
        online_ridge: Prior precision of the online heads updated by feedback. None (default):
            the head of an LLM with offline training rows starts from those rows (as rows of
            residual 0, plus ridge 1: one feedback weighs one training row; measured on
            RouterBench and LLMRouter, see docs/dev/learning.md); an LLM without them starts
            from ridge 1 while no LLM has offline data (feedback is all a cold router learns
            from), 50 once the router is fitted. A number: every head starts from that ridge.
        tracker: The :class:`LatencyTracker` that supplies expected waiting times.
        clock: Clock of the budget period.
        max_pending: Decisions kept by the in-memory log (oldest dropped first).
        log: Where decisions, feedback and outcomes go: a path (a durable
            :class:`~mixllm_core.log.SQLiteLog`), a database URL shared by many processes or
            hosts (``"postgresql+psycopg://user@host/db"``, ``"sqlite:///routing.db"``), a
            :class:`~mixllm_core.log.RoutingLog`, or None for an in-memory log (lost with the
            process).
        store_prompts: Whether the log this router builds keeps prompt texts (True, the
            default: ``refit`` can re-embed them) or only their sha256 and representation.
        shared_state: ``"redis://host:6379/0"`` or a
            :class:`~mixllm_core.shared_state.SharedState`: in-flight calls, service times, the
            budget and cooldowns are shared by every replica through Redis, failing open to
            local state (None: this process only). A ``tracker`` given too is used as it is.
        sync_interval_s: On a log other processes write to (a file or a database), how stale
            the online heads may get: a route that finds the last :meth:`sync` older than this
            starts one in the background (it never waits for it). None: only explicit
            :meth:`sync` calls (and every feedback given to this router) fold other writers'
            feedback.
        memory: Remember the qualities observed per query (the training rows, then every
            feedback) and mix them into the prediction when a query comes again (see
            :mod:`mixllm_core.memory`). A query never seen is routed exactly as without.
        memory_prior: How many observations the model's own prediction counts as when it is
            mixed with a seen query's observed mean (``k0`` in :mod:`mixllm_core.memory`).

    Example:
        >>> from mixllm_core.testing import HashingEncoder, make_synthetic_world
        >>> data = make_synthetic_world(n_queries=200, seed=0)
        >>> router = MixLLMRouter(encoder=HashingEncoder()).fit(data)
        >>> router.route("Solve 12 * 7 and explain the steps.").llm in data.llms
        True
    """

    def __init__(
        self,
        llms: Iterable[LLMSpec | str] = (),
        *,
        encoder: QueryEncoder | None = None,
        quality_model: str = "linear",
        quality_params: dict[str, Any] | None = None,
        policy: DecisionPolicy | None = None,
        seed: int = 0,
        online_ridge: float | None = None,
        tracker: LatencyTracker | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_pending: int = 100_000,
        log: RoutingLog | str | Path | None = None,
        store_prompts: bool = True,
        shared_state: SharedState | str | None = None,
        sync_interval_s: float | None = 1.0,
        memory: bool = True,
        memory_prior: float = 1.0,
    ) -> None:
        if not isinstance(memory, bool):
            raise ConfigError(f"memory must be True or False, got {memory!r}.")
        self.memory = memory
        self.memory_prior = check_memory_prior(memory_prior)
        if sync_interval_s is not None and (
            isinstance(sync_interval_s, bool)
            or not isinstance(sync_interval_s, (int, float))
            or not sync_interval_s >= 0
        ):
            raise ConfigError(
                f"sync_interval_s must be None or a number of seconds >= 0, got {sync_interval_s!r}."
            )
        QualityPredictor(quality_model, **(quality_params or {}))  # validates kind and params
        specs: dict[str, LLMSpec] = {}
        for llm in llms:
            spec = llm if isinstance(llm, LLMSpec) else LLMSpec(str(llm))
            if spec.name in specs:
                raise ConfigError(f"LLM {spec.name!r} appears twice in the pool.")
            specs[spec.name] = spec
        self.quality_model = quality_model
        self.quality_params = dict(quality_params or {})
        self.policy = policy or DecisionPolicy()
        self.seed = seed
        self.online_ridge = online_ridge
        self.shared_state = SharedState.of(shared_state)
        shared = self.shared_state
        self.tracker = tracker or (LatencyTracker() if shared is None else shared.tracker())
        self.cooldown_board = None if shared is None else shared.cooldowns()
        self.clock = clock
        self.max_pending = max_pending
        self.maker = DecisionMaker(self.policy, seed=seed)
        self.budget = (BudgetTracker if shared is None else shared.budget)(
            self.policy.budget, self.policy.budget_period_s, clock
        )
        self._lock = threading.RLock()  # writers only: routes never take it
        self._refit_lock = threading.Lock()  # one refit at a time
        self._late: list[_Late] | None = None  # set while a refit runs
        self.log: RoutingLog = open_log(log, store_prompts=store_prompts, max_pending=max_pending)
        self.sync_interval_s = sync_interval_s
        self._sync = SyncState()
        pool = PoolModel.cold(
            list(specs.values()),
            encoder if encoder is not None else default_router_encoder(),
            quality_model,
        )
        self._model = RoutingModel(pool, None, 0, self._empty_memory(pool.names))
        for spec in specs.values():
            self.tracker.set_concurrency(spec.name, spec.max_concurrency)

    # ------------------------------------------------------------------ the published model
    @property
    def model(self) -> RoutingModel:
        """The immutable :class:`~mixllm_core.snapshot.RoutingModel` routes read now."""
        return self._model

    @property
    def specs(self) -> Mapping[str, LLMSpec]:
        """The pool (read-only; change it with :meth:`add_llm` / :meth:`remove_llm`)."""
        return self._model.pool.specs

    @property
    def llms(self) -> list[str]:
        return list(self._model.pool.specs)

    @property
    def encoder(self) -> QueryEncoder:
        """The encoder the predictors read; assigning one publishes a new model."""
        return self._model.pool.encoder

    @encoder.setter
    def encoder(self, encoder: QueryEncoder) -> None:
        with self._lock:
            model = self._model
            self._model = replace(model, pool=model.pool.with_encoder(encoder))

    @property
    def c_ref_(self) -> float | None:
        """The reference cost learned by ``fit`` (None before, or without costs in the data)."""
        return self._model.pool.c_ref

    @property
    def _quality(self) -> Mapping[str, QualityPredictor]:
        return self._model.pool.quality

    @property
    def _heads(self) -> HeadsTable | None:
        return self._model.heads

    def _empty_memory(self, names: Sequence[str]) -> OutcomeMemory | None:
        return OutcomeMemory.empty(names) if self.memory else None

    def _new_quality(self) -> QualityPredictor:
        return QualityPredictor(self.quality_model, seed=self.seed, **self.quality_params)

    def features(
        self,
        texts: Sequence[str],
        *,
        show_progress: bool = False,
        tasks: Sequence[str | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Representations ``X`` and cost features ``F`` of ``texts`` (current encoder), with
        the task hints ``tasks`` as :meth:`route_batch` applies them."""
        return self._model.pool.features(texts, show_progress=show_progress, tasks=tasks)

    def head_ridge(self) -> float:
        """The ridge of new online heads (see ``online_ridge``)."""
        return self._head_ridge(self._model.pool)

    def _head_ridge(self, pool: PoolModel) -> float:
        if self.online_ridge is not None:
            return self.online_ridge
        return 50.0 if pool.is_fitted else 1.0

    def _head_prior(self, pool: PoolModel, llm: str, dim: int) -> np.ndarray | None:
        """The ``A⁻¹`` ``llm``'s fresh head starts from: with the default ``online_ridge``, its
        offline training rows as rows of residual 0 (one feedback weighs one training row;
        measured in docs/dev/learning.md); None (``ridge·I``) for an LLM without them."""
        return None if self.online_ridge is not None else pool.head_prior(llm, dim)

    def _heads_for(self, model: RoutingModel, dim: int) -> HeadsTable:
        """``model``'s heads when they read ``dim``-dimensional vectors, else a fresh set."""
        heads = model.heads
        if heads is not None and heads.dim == dim:
            return heads
        fresh = HeadsTable.empty(dim, ridge=self._head_ridge(model.pool))
        return fresh.with_heads(model.pool.names)

    def _ensure_heads(self, dim: int) -> HeadsTable:
        """The online heads for ``dim``-dimensional representations, one per pool LLM."""
        with self._lock:
            model = self._model
            heads = self._heads_for(model, dim)
            if heads is not model.heads:
                self._model = replace(model, heads=heads)
            return heads

    def _route_heads(self, model: RoutingModel, dim: int) -> HeadsTable:
        """The heads a route reads; fresh ones are published only when no writer is busy."""
        heads = self._heads_for(model, dim)
        if heads is not model.heads and self._lock.acquire(blocking=False):
            try:
                if self._model is model:
                    self._model = replace(model, heads=heads)
            finally:
                self._lock.release()
        return heads

    # ------------------------------------------------------------------ fit
    def fit(self, data: RoutingData, *, show_progress: bool = False) -> MixLLMRouter:
        """Fit every LLM's predictors on ``data`` (each LLM only on its own column).

        An encoder with an ``adapted(texts)`` method (the default :class:`StaticEncoder`) first
        learns its corpus part from ``data``'s queries: ``router.encoder`` becomes a copy adapted
        to them (the encoder passed in is left as it was, so routers sharing one never disturb
        each other), fixed until the next ``fit``. Routes go on with the previous model until the
        fitted one replaces it; the online heads start again from zero.
        """
        if not isinstance(data, RoutingData):
            raise DataFormatError(f"fit() takes RoutingData, got {type(data).__name__}.")
        if len(data) == 0:
            raise DataFormatError("fit() got routing data with 0 queries.")
        with self._lock:
            model = self._model
            specs = dict(model.pool.specs) or {n: data.specs.get(n, LLMSpec(n)) for n in data.llms}
            missing = [n for n in specs if n not in data.llms]
            if missing:
                raise DataFormatError(
                    f"The pool's LLMs {missing} have no column in the data; it has {data.llms}."
                )
            encoder = model.pool.encoder
            if isinstance(encoder, TaggedEncoder) and encoder.fit_with_router:  # the default
                encoder = encoder.refitted(data.queries, data.tasks)
            elif isinstance(encoder, AdaptableEncoder):  # this router's own adapted copy
                encoder = encoder.adapted(data.queries)
            pool = model.pool.with_encoder(encoder)
            X, F = pool.features(data.queries, show_progress=show_progress, check=False)
            iterator: Iterable[str] = list(specs)
            if show_progress:
                from tqdm.auto import tqdm

                iterator = tqdm(list(specs), desc="fitting predictors", unit="LLM")
            quality, cost, train = {}, {}, {}
            seen: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # one view of X for all LLMs
            for name in iterator:
                quality[name], cost[name], train[name] = fit_llm(
                    specs[name], X, F, data, self._new_quality(), seen
                )
            observed = data.select_llms(list(specs)).mean_cost()
            c_ref = float(np.nanmax(observed)) if np.isfinite(observed).any() else None
            kept = data.select_llms(list(specs))
            pool = PoolModel(specs, quality, cost, train, encoder, c_ref, model.pool.retired, kept)
            for name in specs.keys() - model.pool.specs.keys():
                self.tracker.set_concurrency(name, specs[name].max_concurrency)
            heads = HeadsTable.empty(X.shape[1], ridge=self._head_ridge(pool))
            memory = None
            if self.memory:
                memory = OutcomeMemory.from_observations(
                    kept.llms, kept.queries, kept.quality, kept.observed
                )
            self._model = RoutingModel(
                pool, heads.with_heads(pool.names), model.feedback_seq, memory
            )
        return self

    # ------------------------------------------------------------------ add / remove
    def add_llm(
        self,
        spec: LLMSpec | str,
        data: RoutingData | None = None,
        *,
        prior_scale: float | None = None,
    ) -> MixLLMRouter:
        """Add an LLM at run time; only its own predictors are trained.

        With ``data`` holding a column for it, its predictors warm-start from that data; without,
        it starts from the price-aware prior with a wide online uncertainty (it gets explored) and
        an online head that learns as fast as a cold router's: its ``A⁻¹`` starts at
        ``prior_scale / ridge · I``, by default ``max(4, ridge) / ridge`` — 4·I in a cold router,
        I (ridge 1) beside fitted LLMs whose heads have ridge 50.
        """
        spec = spec if isinstance(spec, LLMSpec) else LLMSpec(str(spec))
        with self._lock:
            model = self._model
            if spec.name in model.pool.specs:
                raise ConfigError(f"LLM {spec.name!r} is already in the pool {self.llms}.")
            if data is not None:
                if spec.name not in data.llms:
                    raise DataFormatError(
                        f"The data has no column for {spec.name!r}; it has {data.llms}."
                    )
                X, F = model.pool.features(data.queries)
                fitted = fit_llm(spec, X, F, data, self._new_quality())
                pool = model.pool.with_llm(spec, *fitted)
            else:
                pool = model.pool.with_prior_llm(spec, self.quality_model)
            heads = model.heads
            if heads is not None:
                wide = max(4.0, heads.ridge) if prior_scale is None else prior_scale
                heads = heads.with_head(spec.name, prior_scale=1.0 if data is not None else wide)
            self.tracker.set_concurrency(spec.name, spec.max_concurrency)
            memory = model.memory
            if memory is not None:
                memory = memory.with_llm(spec.name)
                if data is not None:  # its observed column is remembered too
                    column = data.select_llms([spec.name])
                    memory = memory.merged(
                        OutcomeMemory.from_observations(
                            column.llms, column.queries, column.quality, column.observed
                        )
                    )
            self._model = RoutingModel(pool, heads, model.feedback_seq, memory)
        return self

    def remove_llm(self, name: str) -> MixLLMRouter:
        """Remove an LLM; it is never chosen again. Feedback on its past decisions is logged only.

        A route that read the pool before the removal and chose this LLM decides again on the
        new pool, so once ``remove_llm`` has returned, routes return pool LLMs only. (Were the
        pool to lose the chosen LLM on each of four tries, the last decision stands: the
        dispatcher still calls that child and feedback on the decision is only logged.)
        Excluding a removed LLM is not an error.
        """
        with self._lock:
            model = self._model
            if name not in model.pool.specs:
                raise UnknownLLMError(name, model.pool.specs)
            if len(model.pool.specs) == 1:
                raise EmptyPoolError(f"Cannot remove {name!r}: it is the last LLM in the pool.")
            heads = None if model.heads is None else model.heads.without(name)
            memory = None if model.memory is None else model.memory.without_llm(name)
            self._model = RoutingModel(
                model.pool.without_llm(name), heads, model.feedback_seq, memory
            )
            self.tracker.set_concurrency(name, None)
        return self

    # ------------------------------------------------------------------ predict
    def c_ref(self) -> float:
        """Reference cost normalising ĉ; it never depends on the queries being routed.

        The largest mean training cost once fitted on data with costs; otherwise the priciest
        pool LLM's cost for a reference call (``REFERENCE_INPUT_TOKENS`` in,
        ``ASSUMED_OUTPUT_TOKENS`` out); 1.0 when every LLM is free. A query therefore gets the
        same decision alone or inside any batch.
        """
        return self._model.pool.reference_cost()

    def _predict(
        self,
        model: RoutingModel,
        X: np.ndarray,
        F: np.ndarray,
        keys: Sequence[str] | None = None,
    ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        pool = model.pool
        bank = pool.bank
        Q_off = bank.predict_quality(X)
        C = bank.predict_cost(F)
        corr, U = self._route_heads(model, X.shape[1]).predict(pool.names, X)
        Q = np.clip(Q_off + corr, 0.0, 1.0)
        if keys is not None and model.memory is not None:  # seen queries: observed outcomes
            Q, U = model.memory.blend(keys, pool.names, Q, U, self.memory_prior)
        return list(pool.names), Q_off, Q, C, U

    def _predict_all(
        self, X: np.ndarray, F: np.ndarray
    ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self._predict(self._model, X, F)

    def predict_features(
        self, X: np.ndarray, F: np.ndarray, *, keys: Sequence[str] | None = None
    ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """Quality, cost and uncertainty ``(n, m)`` for precomputed features (the hot path).

        With ``keys`` (:func:`~mixllm_core.memory.query_key` of each query text) the memory of
        observed outcomes is mixed in, as a route does; without, the model's predictions alone.
        """
        names, _, Q, C, U = self._predict(self._model, X, F, keys)
        return names, Q, C, U

    def predict(
        self, queries: Sequence[Query], *, tasks: Sequence[str | None] | None = None
    ) -> dict[str, np.ndarray | list[str]]:
        """Predicted ``quality``, ``cost`` and ``uncertainty`` per query and LLM, with ``llms``.

        ``tasks``: a task hint per query, or None per query to let the tagger decide, as in
        :meth:`route_batch` (same names, same :class:`ConfigError` for a bad hint).

        Example:
            >>> from mixllm_core.testing import HashingEncoder, make_synthetic_world
            >>> from mixllm_core.encoders import TaggedEncoder
            >>> enc = TaggedEncoder(HashingEncoder(), fit_with_router=True)
            >>> router = MixLLMRouter(encoder=enc).fit(make_synthetic_world(400, seed=0))
            >>> P = router.predict(["Hello there"] * 2, tasks=[None, "math"])
            >>> quality = P["quality"][:, P["llms"].index("math-pro")]  # no hint, then "math"
            >>> [round(float(q), 1) for q in quality]
            [0.7, 0.9]
        """
        model = self._model
        texts = [query_text(q) for q in queries]
        X, F = model.pool.features(texts, tasks=tasks)
        names, _, Q, C, U = self._predict(model, X, F, [query_key(t) for t in texts])
        return {"llms": names, "quality": Q, "cost": C, "uncertainty": U}

    # ------------------------------------------------------------------ route
    def _decide(
        self,
        names: Sequence[str],
        q: np.ndarray,
        c: np.ndarray,
        u: np.ndarray,
        policy: DecisionPolicy,
        c_ref: float,
        exclude: frozenset[str],
        input_tokens: float,
        specs: Mapping[str, LLMSpec] | None = None,
        windows: np.ndarray | None = None,
    ) -> RoutingDecision:
        pool = self._model.pool
        if specs is None or specs is pool.specs:
            specs = pool.specs
        if windows is None:  # per-pool arrays: built once per pool model, not per decision
            same = specs is pool.specs and tuple(names) == pool.names
            windows = pool.context_windows if same else _context_windows(names, specs)
        blocked = None
        too_long = input_tokens > windows
        if too_long.any():
            blocked = [
                f"prompt of ~{input_tokens:.0f} tokens > context window {specs[n].context_window}"
                if long
                else ""
                for n, long in zip(names, too_long.tolist())
            ]
        wait = self.tracker.expected_waits(names)
        service = self.tracker.service_times(names) if policy.tau is not None else None
        available = np.array([n not in exclude for n in names]) if exclude else None
        for _ in range(_ROUTE_ATTEMPTS):  # decided again while a shared budget refuses the hold
            decision = self.maker.decide(
                names,
                q,
                c,
                c_ref,
                uncertainty=u,
                wait=wait,
                service=service,
                available=available,
                unavailable_reasons=blocked,
                budget_left=self.budget.remaining(),
                policy=policy,
            )
            if decision.fallback or self.budget.hold(decision.decision_id, decision.predicted_cost):
                break
        return decision

    def _policy(self, lam: float | None, policy: DecisionPolicy | None) -> DecisionPolicy:
        p = policy or self.policy
        return p if lam is None else replace(p, lam=lam)

    def _check_excluded(self, model: RoutingModel, excluded: frozenset[str]) -> None:
        """An excluded name must be or have been in the pool (a removed one is ignored)."""
        for name in excluded:
            if name in model.pool.specs or name in model.pool.retired:
                continue
            now = self._model.pool  # an LLM added since ``model`` was read is known too
            if name not in now.specs and name not in now.retired:
                raise UnknownLLMError(name, now.specs)

    def _decide_all(
        self,
        model: RoutingModel,
        texts: list[str],
        keys: list[str],
        policy: DecisionPolicy,
        excluded: frozenset[str],
        tasks: Sequence[str | None] | None = None,
    ) -> tuple[list[RoutingDecision], np.ndarray, list[float]]:
        """Every query's decision from ``model`` alone (``keys``: the texts' memory keys;
        ``tasks``: task hints), with its representation and the offline quality of its choice."""
        pool = model.pool
        if not pool.specs:
            raise EmptyPoolError("The pool is empty: add an LLM or fit on data first.")
        X, F = pool.features(texts, tasks=tasks)
        names, Q_off, Q, C, U = self._predict(model, X, F, keys)
        c_ref = pool.reference_cost()
        windows = pool.context_windows
        decisions, offline = [], []
        for i, text in enumerate(texts):
            d = self._decide(
                names,
                Q[i],
                C[i],
                U[i],
                policy,
                c_ref,
                excluded,
                estimate_tokens(text),
                pool.specs,
                windows,
            )
            decisions.append(d)
            offline.append(float(Q_off[i, names.index(d.llm)]))
        return decisions, X, offline

    def route_batch(
        self,
        queries: Sequence[Query],
        *,
        lam: float | None = None,
        policy: DecisionPolicy | None = None,
        exclude: Iterable[str] = (),
        tasks: Sequence[str | None] | None = None,
    ) -> list[RoutingDecision]:
        """Route several queries with one encoder pass and one prediction call.

        Every decision reads one consistent model; when one of them names an LLM removed while
        the batch was decided, the batch is decided again on the new pool (see
        :meth:`remove_llm`).

        Args:
            queries: The prompts.
            lam: Overrides the policy's λ for these calls.
            policy: Overrides the whole policy for these calls.
            exclude: LLMs not to choose (see :meth:`route`).
            tasks: A task hint per query, or None per query to let the tagger decide (see
                :meth:`route`); the log records the features the hint gave.
        """
        p = self._policy(lam, policy)
        excluded = frozenset(exclude)
        texts = [query_text(q) for q in queries]
        hints = check_task_hints(tasks, len(texts))
        keys = [query_key(t) for t in texts]  # the memory's keys and the log's query hashes
        model = self._model
        self._check_excluded(model, excluded)
        for _ in range(_ROUTE_ATTEMPTS):
            decisions, X, offline = self._decide_all(model, texts, keys, p, excluded, hints)
            now = self._model
            if now.pool is model.pool or all(d.llm in now.pool.specs for d in decisions):
                break
            model = now
        for i, d in enumerate(decisions):
            self.log.add_decision(d, texts[i], X[i], offline[i], keys[i])
        self._maybe_sync()
        return decisions

    def route(
        self,
        query: Query,
        *,
        lam: float | None = None,
        policy: DecisionPolicy | None = None,
        exclude: Iterable[str] = (),
        task: str | None = None,
    ) -> RoutingDecision:
        """Choose the LLM for one query (a string or chat messages).

        Args:
            query: The prompt.
            lam: Overrides the policy's λ for this call.
            policy: Overrides the whole policy for this call.
            exclude: LLMs not to choose this time (e.g. one that just failed). A name that was
                removed from the pool is ignored; one that was never in it raises
                :class:`UnknownLLMError`.
            task: The query's task when the caller knows it (the endpoint or chain it came
                from), one of the tasks the router was trained on
                (``router.encoder.task_names()``). The router then predicts from the one-hot of
                that task instead of its tagger's guess. None: the tagger decides. Needs an
                encoder with task features (the default, once fitted on data with tasks);
                otherwise, or for a task it does not know, :class:`ConfigError`.

        Example:
            >>> from mixllm_core.testing import HashingEncoder, make_synthetic_world
            >>> from mixllm_core.encoders import TaggedEncoder
            >>> data = make_synthetic_world(400, seed=0)
            >>> enc = TaggedEncoder(HashingEncoder(), fit_with_router=True)
            >>> router = MixLLMRouter(encoder=enc).fit(data)
            >>> router.encoder.task_names()
            ['code', 'logic', 'math', 'trivia', 'writing']
            >>> query = "Hello there"  # nothing in it says what it is about
            >>> [router.route(query, task=t).llm for t in (None, "code", "math")]
            ['mid-70b', 'coder-34b', 'math-pro']
        """
        if task is not None and not isinstance(task, str):
            raise ConfigError(f"task must be a task name (str) or None, got {task!r}.")
        tasks = None if task is None else [task]
        return self.route_batch([query], lam=lam, policy=policy, exclude=exclude, tasks=tasks)[0]

    # ------------------------------------------------------------------ calibrate
    def calibrate(
        self,
        data: RoutingData,
        *,
        target_cost: float | None = None,
        target_quality_share: float | None = None,
        lambdas: Sequence[float] = CALIBRATION_GRID,
        apply: bool = False,
    ) -> Calibration:
        """Pick λ so that ``data``'s queries, routed, meet a target mean cost or quality.

        Routes every query of ``data`` (validation data the router was not fit on) at each λ
        of ``lambdas`` with this router's predictions and policy (exploration included; no
        budget, latency or context-window limits) and reads the mean cost and quality of the
        chosen LLMs from ``data`` (the predicted cost when ``data`` has none); see
        :func:`~mixllm_core.calibration.pick_lambda` for the choice.

        Args:
            data: Validation rows with a column for every pool LLM.
            target_cost: Mean USD per query to stay within, or
            target_quality_share: A share in [0, 1] of the best single LLM's mean quality on
                ``data`` to reach as cheaply as possible. Give exactly one.
            lambdas: The λ values tried.
            apply: Set the chosen λ as this router's policy λ.

        Raises:
            ConfigError: not exactly one target, or a target out of range.
            DataFormatError: ``data`` is empty or lacks a pool LLM.

        Example:
            >>> from mixllm_core.testing import HashingEncoder, make_synthetic_world
            >>> train, val = make_synthetic_world(600, seed=0).train_test_split(seed=0)
            >>> router = MixLLMRouter(encoder=HashingEncoder()).fit(train)
            >>> result = router.calibrate(val, target_cost=0.001, apply=True)
            >>> result.met, result.cost <= 0.001, router.policy.lam == result.lam
            (True, True, True)
        """
        kind, value = check_target(target_cost, target_quality_share)
        model = self._model
        names = list(model.pool.names)
        if not isinstance(data, RoutingData) or len(data) == 0:
            raise DataFormatError("calibrate() needs RoutingData with at least one query.")
        missing = [n for n in names if n not in data.llms]
        if missing:
            raise DataFormatError(f"The data has no column for {missing}; it has {data.llms}.")
        cols = [data.llms.index(n) for n in names]
        X, F = model.pool.features(data.queries)
        _, _, Q, C, U = self._predict(model, X, F, [query_key(t) for t in data.queries])
        cost = C if data.cost is None else data.cost[:, cols]
        quality = data.quality[:, cols]
        rows = np.arange(len(data))
        c_ref = model.pool.reference_cost()
        lams = [float(lam) for lam in lambdas]
        points = []
        for lam in lams:
            S = self.maker.scores(Q, C, c_ref, uncertainty=U, policy=replace(self.policy, lam=lam))
            pick = np.argmax(S, axis=1)
            points.append((cost[rows, pick].mean(), quality[rows, pick].mean()))
        costs, quals = [p[0] for p in points], [p[1] for p in points]
        if kind == "cost":
            result = pick_lambda(lams, costs, quals, target_cost=value)
        else:
            best = value * float(quality.mean(axis=0).max())
            result = pick_lambda(lams, costs, quals, target_quality=best)
        result = replace(result, cost_source="predicted" if data.cost is None else "observed")
        if apply:
            self.policy = replace(self.policy, lam=result.lam)
            self.maker.policy = self.policy
        return result

    # ------------------------------------------------------------------ feedback
    def feedback(
        self, decision_id: str, *, score: float | None = None, thumbs: bool | None = None
    ) -> FeedbackResult:
        """Learn from the outcome of a routed call.

        The feedback is written to the log first, then applied to the chosen LLM's online head
        and to the memory of this query's outcomes (so a crash in between loses nothing: the head is rebuilt from the log on start). It
        never waits for a running ``refit`` and is not lost by it (see :meth:`refit`).

        Args:
            decision_id: ``RoutingDecision.decision_id`` of the call.
            score: A refined quality score in [0, 1], or
            thumbs: A binary thumbs up (True) / down (False). Give exactly one of the two.

        Raises:
            FeedbackError: unknown or already-used decision id, or a bad score.
        """
        if (score is None) == (thumbs is None):
            raise FeedbackError("Give exactly one of score= (in [0, 1]) or thumbs= (True/False).")
        if thumbs is not None:
            if not isinstance(thumbs, (bool, np.bool_)):
                raise FeedbackError(f"thumbs must be True or False, got {thumbs!r}.")
            value, kind = (1.0 if thumbs else 0.0), "binary"
        else:
            if (
                isinstance(score, bool)
                or not isinstance(score, (int, float, np.floating))
                or not 0.0 <= float(score) <= 1.0
            ):
                raise FeedbackError(f"score must be a number in [0, 1], got {score!r}.")
            value, kind = float(score), "refined"
        if self.online_ridge is None:  # the heads' priors, outside the lock (once per pool)
            self._model.pool.warm_head_priors()
        with self._lock:
            if self.log.has_feedback(decision_id):
                raise FeedbackError(f"Decision {show_id(decision_id)} already received feedback.")
            logged = self.log.get_decision(decision_id)
            if logged is None:
                raise FeedbackError(
                    f"Unknown decision id {show_id(decision_id)}: it was not made by this router "
                    "(or its log), or the in-memory log has dropped it."
                )
            in_pool = logged.llm in self._model.pool.specs
            reason = "" if in_pool else f"LLM {logged.llm!r} is no longer in the pool"
            seq = self.log.add_feedback(decision_id, logged.llm, value, kind, in_pool, reason)
            if self.log.shared:  # fold every writer's feedback up to this one, in id order
                self._fold_log()
            elif in_pool:
                key = logged.query_hash or (
                    None if logged.query is None else query_key(logged.query)
                )
                self._learn(logged.llm, logged.x, value - logged.offline_quality, seq, key, value)
            else:
                self._model = replace(self._model, feedback_seq=max(self._model.feedback_seq, seq))
        return FeedbackResult(decision_id, logged.llm, value, applied=in_pool, reason=reason)

    def _learn(
        self,
        llm: str,
        x: np.ndarray,
        residual: float,
        seq: int,
        key: str | None = None,
        score: float | None = None,
    ) -> None:
        """Apply one feedback to ``llm``'s online head and (with the query's ``key`` and the
        ``score``) to the memory, and publish both at once (under the lock)."""
        model = self._model
        dim = int(x.shape[0])
        prior = self._head_prior(model.pool, llm, dim)
        heads = self._heads_for(model, dim).learned(llm, x, residual, prior=prior)
        memory = model.memory
        if memory is not None and key is not None and score is not None:
            memory = memory.observed(key, llm, score)
        self._model = RoutingModel(model.pool, heads, max(model.feedback_seq, seq), memory)
        if self._late is not None:  # a refit is running: it re-applies this after its swap
            self._late.append((seq, llm, x, residual))

    def _apply_feedback(self, llm: str, x: np.ndarray, residual: float) -> None:
        with self._lock:
            self._learn(llm, x, residual, 0)

    def replay_log(self) -> int:
        """Apply logged feedback newer than the router's state to the online heads.

        Called on :meth:`load` with a log; returns the number of feedbacks applied. See
        :meth:`sync`, which also swaps in a newer published router version.
        """
        with self._lock:
            return self._fold_log()

    def _fold_log(self) -> int:
        """Fold the logged feedback after ``feedback_seq`` in id order (under the lock).

        Every writer's feedback counts once: the log hands out ids in commit order, so the
        heads always hold exactly the feedback with ids up to ``feedback_seq`` (that the pool
        could use), folded in id order whichever process received it.
        """
        applied = 0
        for fb in self.log.feedback(since_seq=self._model.feedback_seq):
            if fb.applied and fb.llm in self._model.pool.specs:
                key = fb.query_hash or (None if fb.query is None else query_key(fb.query))
                self._learn(fb.llm, fb.x, fb.score - fb.offline_quality, fb.seq, key, fb.score)
                applied += 1
            else:
                model = self._model
                self._model = replace(model, feedback_seq=max(model.feedback_seq, fb.seq))
        return applied

    def sync(self) -> int:
        """Fold every feedback logged since the last sync, by any process, into the online heads.

        On a database log, a router version published by the coordinated refit
        (:func:`mixllm_core.fleet.run_refit`) newer than this router's is swapped in first
        (routes go on reading the old model until the one-step swap). Returns the number of
        feedback rows applied.
        """
        with self._sync.running:
            if self._sync.closed:
                return 0
            self._sync.mark()
            self._pick_up_published()
            if self.online_ridge is None:  # the heads' priors, outside the lock (once per pool)
                self._model.pool.warm_head_priors()
            with self._lock:
                return self._fold_log()

    def _pick_up_published(self) -> None:
        log = self.log
        if not isinstance(log, StatePublisher):
            return
        base = self._sync.base
        version = 0 if base is None else log.latest_state_version(base)
        if version <= self._sync.version:
            return
        model = published_model(log, version, self._model.pool.encoder)
        if model is None:  # pruned meanwhile: the next sync reads a newer one
            return
        with self._lock:
            for name in model.pool.specs.keys() - self._model.pool.specs.keys():
                self.tracker.set_concurrency(name, model.pool.specs[name].max_concurrency)
            if not self.memory:  # this replica's memory= setting wins over the publisher's
                model = replace(model, memory=None)
            elif model.memory is None:
                mine = self._model.memory
                same = mine is not None and tuple(mine.llms) == tuple(model.pool.names)
                model = replace(
                    model, memory=mine if same else self._empty_memory(model.pool.names)
                )
            self._model = model
            self._sync.version = version

    def close(self) -> None:
        """Stop syncing and close the log (after a background sync that is running ends)."""
        self.sync_interval_s = None
        with self._sync.running:  # a background sync started before this ends first
            self._sync.closed = True
            self.log.close()

    def _maybe_sync(self) -> None:
        """Start a background :meth:`sync` when the last one is older than ``sync_interval_s``."""
        interval = self.sync_interval_s
        if interval is None or not self.log.shared or not self._sync.due(interval):
            return
        self._sync.start_background(self.sync)

    def refit(
        self,
        *,
        min_feedback: int = 20,
        show_progress: bool = False,
        guard: RefitGuard | None = None,
    ) -> RefitOutcome:
        """Learn again what ``fit`` learned, from the training data plus all logged feedback.

        Feedback is partial: only the chosen LLM's answer is scored, and the chosen one is the one
        the router favoured. Refit is therefore an off-policy estimator: each feedback row is
        weighted by the inverse of the probability with which its LLM was chosen (logged with
        the decision; clipped and self-normalised, see :mod:`mixllm_core.offpolicy`). Decisions
        logged without a propensity count as chosen with probability 1.

        With the training data ``fit`` kept (a router fit in this process), everything is
        learned again: an adaptable encoder's corpus part (the default :class:`StaticEncoder`)
        from the training and feedback queries together, then every LLM's quality predictor
        from its training rows plus its weighted feedback and its cost predictor from its
        training rows. Without it (a router loaded from a file) only the quality predictors of
        LLMs with feedback are refit, on the stored training sets plus the weighted feedback.
        Each LLM is refit on its own observations only. An LLM added without data needs
        ``min_feedback`` of them first (below that it keeps its prior and online head). The refit
        LLMs' online heads restart from zero, since what they had learned is now part of the
        offline predictors. The memory of observed outcomes (``memory=True``) is kept as it is:
        it already holds the training rows and every feedback folded since ``fit``.

        The predictors are trained outside the router's lock: routes and feedback go on meanwhile
        and the new predictors replace the old ones in one step. Feedback that arrives after the
        refit read the log is applied to the current heads at once and again to the fresh heads
        after the swap, so it still counts. An LLM whose predictors ``fit``, ``add_llm`` or
        ``remove_llm`` replaced meanwhile keeps the new ones (and is not in the result).

        With ``guard`` (opt-in, see :class:`~mixllm_core.snapshot.RefitGuard`) a whole
        refit must first earn its place: learned without the newest feedback, it must route
        that held-out feedback better than the current model by a doubly robust off-policy
        estimate, by a margin of standard errors; otherwise the router keeps its offline model
        exactly, and its online heads drop the feedback the refit read (they restart from zero,
        feedback that arrives during the refit is applied again): a refused refit routes as no
        feedback would, except that the memory of seen queries keeps what it observed, and
        unless the heads pass the guard's own test (``head_margin``: heads learned without part
        of the feedback route that part better), in which case they keep all the feedback. The
        report says why. Without it (the default) refit always learns.

        Returns:
            The number of feedback records used per refit LLM, a mapping that also carries the
            guard's verdict (``accepted``, ``gain``, ``stderr``, ``n_holdout``, ``reason``).
        """
        with self._refit_lock:
            with self._lock:
                if self.log.shared:
                    self._fold_log()
                start = self._model.pool
                self._late = []
            try:
                if start.data is not None:  # fit in this process: learn everything again
                    feedback = list(self.log.feedback(since_seq=0))
                    cut = max((fb.seq for fb in feedback), default=0)
                    whole = refit_pool(
                        start, feedback, self._new_quality, min_feedback=min_feedback, guard=guard
                    )
                    if whole is not None:
                        pool, report = whole
                        kept = None
                        heads = self._model.heads
                        if pool is None and guard is not None and heads is not None:
                            kept = self._guard_heads(start, heads, feedback, guard, report)
                        with self._lock:
                            if self.log.shared:  # the rows up to ``cut`` are in the heads first
                                self._fold_log()
                            if pool is None:  # refused: the offline model stays; the heads
                                # keep the feedback only if they passed the guard's test, else
                                # drop what it judged (what no feedback would give)
                                if kept is not None and self._model.pool is start:
                                    self._keep_heads(kept, cut)
                                    report.heads_kept = True
                                else:
                                    zero = dict.fromkeys(start.names, 0)
                                    self._swap_pool(start, start, zero, cut)
                                return report
                            done = self._swap_pool(start, pool, report, cut)
                        if done is not None:
                            return RefitOutcome(
                                done,
                                accepted=True,
                                gain=report.gain,
                                stderr=report.stderr,
                                n_holdout=report.n_holdout,
                                reason=report.reason,
                            )
                        # the pool changed meanwhile: refit the quality predictors of the LLMs
                        # it left alone, on the representation they were trained on
                fitted, cut = refit_quality(
                    start,
                    self.log.feedback(since_seq=0),
                    self._new_quality,
                    min_feedback=min_feedback,
                    show_progress=show_progress,
                )
                with self._lock:
                    if self.log.shared:  # the rows up to ``cut`` are in the heads first
                        self._fold_log()
                    used = self._swap_refit(start, fitted, cut)
                return RefitOutcome(used, accepted=True, reason="quality only, not guarded")
            finally:
                with self._lock:
                    self._late = None

    def _guard_heads(
        self,
        start: PoolModel,
        heads: HeadsTable,
        feedback: Sequence[LoggedFeedback],
        guard: RefitGuard,
        report: RefitOutcome,
    ) -> HeadsTable | None:
        """The heads a refused refit keeps (learned from all ``feedback``) when they pass
        ``guard``'s test, else None; the verdict goes into ``report``."""
        verdict = guard_heads(
            start, heads, feedback, guard, training_prior=self.online_ridge is None
        )
        report.heads_gain, report.heads_stderr = verdict.gain, verdict.stderr
        report.reason = f"{report.reason}; {verdict.reason}"
        _refit_log.info(
            "online heads %s: %s", "kept" if verdict.heads is not None else "reset", verdict.reason
        )
        return verdict.heads

    def _swap_refit(
        self, start: PoolModel, fitted: dict[str, tuple[QualityPredictor, int]], cut: int
    ) -> dict[str, int]:
        """Publish the refit predictors (under the lock); fresh heads for the refit LLMs, with
        the feedback logged after ``cut`` applied again."""
        model = self._model
        pool = model.pool
        if pool.encoder is not start.encoder:  # refit read another representation
            fitted = {}
        keep = {
            n: q
            for n, (q, _) in fitted.items()
            if n in pool.quality and _same_predictor(pool.quality[n], start.quality[n])
        }
        heads = model.heads
        new_pool = pool.with_quality(keep)
        if heads is not None:
            for name in keep:
                heads = heads.reset(name)
            for seq, llm, x, residual in self._late or ():
                if seq > cut and llm in keep and x.shape[0] == heads.dim:
                    prior = self._head_prior(new_pool, llm, heads.dim)
                    heads = heads.learned(llm, x, residual, prior=prior)
        self._model = RoutingModel(new_pool, heads, max(model.feedback_seq, cut), model.memory)
        return {n: fitted[n][1] for n in keep}

    def _swap_pool(
        self, start: PoolModel, pool: PoolModel, counts: dict[str, int], cut: int
    ) -> dict[str, int] | None:
        """Publish a pool that ``refit`` learned again from ``start`` (under the lock); None when
        ``fit``, ``add_llm``, ``remove_llm`` or a new encoder replaced ``start`` meanwhile."""
        model = self._model
        if model.pool is not start:
            return None
        heads = model.heads
        if heads is not None:
            for name in counts:
                heads = heads.reset(name)
            for seq, llm, x, residual in self._late or ():
                if seq > cut and llm in counts and x.shape[0] == heads.dim:
                    prior = self._head_prior(pool, llm, heads.dim)
                    heads = heads.learned(llm, x, residual, prior=prior)
        self._model = RoutingModel(pool, heads, max(model.feedback_seq, cut), model.memory)
        return counts

    def _keep_heads(self, heads: HeadsTable, cut: int) -> None:
        """Publish heads a refused refit kept (under the lock), with the feedback logged after
        ``cut`` applied again."""
        model = self._model
        for seq, llm, x, residual in self._late or ():
            if seq > cut and llm in heads and x.shape[0] == heads.dim:
                prior = self._head_prior(model.pool, llm, heads.dim)
                heads = heads.learned(llm, x, residual, prior=prior)
        self._model = RoutingModel(model.pool, heads, max(model.feedback_seq, cut), model.memory)

    def record_outcome(
        self,
        decision_id: str,
        *,
        latency_s: float | None = None,
        cost: float | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        error: str | None = None,
    ) -> None:
        """Record what a routed call did (cost is charged to the budget).

        Outcomes go to the router's log (:attr:`log`). Nothing is charged or logged when a
        value is refused.

        Raises:
            ConfigError: ``latency_s`` or ``cost`` is not a finite number >= 0, or a token count
                is not an int >= 0.
            FeedbackError: the log does not know ``decision_id`` (not made by this router, or
                dropped by a bounded in-memory log).
        """
        _check_outcome(latency_s, cost, input_tokens, output_tokens)
        if not isinstance(decision_id, str) or self.log.get_decision(decision_id) is None:
            raise FeedbackError(
                f"Unknown decision id {show_id(decision_id)}: it was not made by this router "
                "(or its log), or the in-memory log has dropped it; no outcome was recorded."
            )
        self.budget.settle(decision_id, None if cost is None else float(cost))
        self.log.add_outcome(
            decision_id,
            latency_s=None if latency_s is None else float(latency_s),
            cost=None if cost is None else float(cost),
            input_tokens=None if input_tokens is None else int(input_tokens),
            output_tokens=None if output_tokens is None else int(output_tokens),
            error=error,
        )

    def decision_llm(self, decision_id: str) -> str | None:
        """The LLM a logged decision chose, or None when the log does not know the id."""
        logged = self.log.get_decision(decision_id)
        return None if logged is None else logged.llm

    # ------------------------------------------------------------------ persistence
    def get_state(self) -> RouterState:
        """Everything this router learned, as one validated :class:`RouterState`.

        Built from one published model, so it is consistent without a lock; the online heads
        are copied, estimators and (read-only) training arrays are shared.
        """
        model = self._model
        pool = model.pool
        return RouterState(
            llms=model.llm_states(),
            policy=self.policy,
            encoder_config=pool.encoder.get_config(),
            quality_model=self.quality_model,
            quality_params=dict(self.quality_params),
            seed=self.seed,
            online_ridge=self.online_ridge,
            heads=None if model.heads is None else model.heads.get_state(pool.names),
            c_ref=pool.c_ref,
            feedback_seq=model.feedback_seq,
            encoder=pool.encoder,
            use_memory=self.memory,
            memory_prior=self.memory_prior,
            memory=model.memory,
        )

    @classmethod
    def from_state(
        cls,
        state: RouterState,
        *,
        encoder: QueryEncoder | None = None,
        tracker: LatencyTracker | None = None,
        log: RoutingLog | str | Path | None = None,
        shared_state: SharedState | str | None = None,
        sync_interval_s: float | None = 1.0,
    ) -> MixLLMRouter:
        """A router that decides exactly as the one whose :meth:`get_state` gave ``state``.

        Args:
            state: A :class:`RouterState`.
            encoder: The encoder; defaults to ``state.encoder``.
            tracker, log, shared_state, sync_interval_s: As in the constructor. Feedback in
                ``log`` newer than the state is not applied here: call :meth:`replay_log`
                (``load`` does).

        Raises:
            ConfigError: ``state`` has no encoder and none was given.
        """
        if not isinstance(state, RouterState):
            raise ConfigError(f"from_state() takes a RouterState, got {type(state).__name__}.")
        encoder = encoder if encoder is not None else state.encoder
        if encoder is None:
            raise ConfigError(
                "This RouterState carries no encoder (it was read without one); pass encoder=."
            )
        router = cls(
            [llm.spec for llm in state.llms],
            encoder=encoder,
            quality_model=state.quality_model,
            quality_params=dict(state.quality_params),
            policy=state.policy,
            seed=state.seed,
            online_ridge=state.online_ridge,
            tracker=tracker,
            log=log,
            shared_state=shared_state,
            sync_interval_s=sync_interval_s,
            memory=state.use_memory,
            memory_prior=state.memory_prior,
        )
        router._model = RoutingModel.from_state(state, encoder)
        return router

    def save(self, directory: str | Path, *, signing_key: bytes | None = None) -> Path:
        """Save to ``directory`` (JSON, ``.npz`` and skops files; no pickle), atomically.

        ``directory`` must be new, empty or a router saved before; anything else raises
        :class:`ConfigError` and is left as it was. With ``signing_key``, an HMAC-SHA256 of the
        manifest is written too (see :mod:`mixllm_core.persistence`).
        """
        return write_state(self.get_state(), Path(directory), signing_key=signing_key)

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        encoder: QueryEncoder | None = None,
        tracker: LatencyTracker | None = None,
        log: RoutingLog | str | Path | None = None,
        signing_key: bytes | None = None,
        shared_state: SharedState | str | None = None,
        sync_interval_s: float | None = 1.0,
    ) -> MixLLMRouter:
        """Load a router saved with :meth:`save`; every file is checked before it is used.

        With ``encoder``, that encoder is used and the saved one is not rebuilt. With ``log``,
        feedback logged after the save is replayed into the online heads (and, on a database
        log, a router version published since by the coordinated refit replaces the saved
        one: see :meth:`sync`). With ``signing_key``, a directory whose signature is missing or
        wrong is refused. With ``shared_state``, the live state is shared with the other replicas
        (see the constructor).

        Raises:
            CorruptStateError: a missing, modified, truncated or malformed file.
        """
        state = read_state(Path(directory), load_encoder=encoder is None, signing_key=signing_key)
        router = cls.from_state(
            state,
            encoder=encoder,
            tracker=tracker,
            log=log,
            shared_state=shared_state,
            sync_interval_s=sync_interval_s,
        )
        router._sync.base = base_of(directory)
        router.sync()
        return router
