"""`MixLLMRouter`: embed the query, predict every LLM's quality and cost, decide, learn online."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .data import ASSUMED_OUTPUT_TOKENS, REFERENCE_INPUT_TOKENS, RoutingData
from .decision import BudgetTracker, DecisionMaker, DecisionPolicy, RoutingDecision
from .encoders import AdaptableEncoder, QueryEncoder, StaticEncoder
from .errors import (
    ConfigError,
    DataFormatError,
    EmptyPoolError,
    FeedbackError,
    UnknownLLMError,
)
from .latency import LatencyTracker
from .log import MemoryLog, RoutingLog, SQLiteLog
from .online import OnlineHeads
from .persistence import read_state, write_state
from .predictors import CostPredictor, PredictorBank, QualityPredictor, cost_features
from .spec import LLMSpec
from .state import LLMState, RouterState
from .text import Query, estimate_tokens, query_text

__all__ = ["FeedbackResult", "MixLLMRouter"]

def _prior_quality(
    specs: Sequence[LLMSpec], trained: dict[str, float] | None = None
) -> dict[str, float]:
    """Price-aware prior quality for LLMs without history.

    With trained LLMs in the pool (``trained``: name → mean observed quality), the prior is a
    least-squares line of mean quality on log price through them, so a newcomer starts where LLMs
    of its price class stand. Without any, a pricier LLM is simply expected to answer better.
    """
    logs = {s.name: float(np.log1p(s.input_price + 3 * s.output_price)) for s in specs}
    trained = {n: q for n, q in (trained or {}).items() if n in logs}
    if len(trained) >= 2 and np.ptp([logs[n] for n in trained]) > 1e-9:
        slope, intercept = np.polyfit([logs[n] for n in trained], list(trained.values()), 1)
        return {n: float(np.clip(intercept + slope * v, 0.05, 0.95)) for n, v in logs.items()}
    lo, hi = min(logs.values(), default=0.0), max(logs.values(), default=0.0)
    if hi - lo < 1e-12:
        return {n: 0.5 for n in logs}
    return {n: 0.4 + 0.4 * (v - lo) / (hi - lo) for n, v in logs.items()}


@dataclass(frozen=True)
class FeedbackResult:
    """What happened to one feedback: ``applied`` is False (with ``reason``) when it was only logged."""

    decision_id: str
    llm: str
    score: float
    applied: bool
    reason: str = ""


class MixLLMRouter:
    """Routes each query to the LLM with the best trade-off of quality, cost and latency.

    Args:
        llms: The pool, as :class:`LLMSpec` or names. May be empty; ``fit`` takes the data's LLMs.
        encoder: A :class:`QueryEncoder`; defaults to :class:`~mixllm_core.StaticEncoder` (static
            MiniLM token table + a corpus part learned by ``fit``: about 1 ms per query, routing
            quality within 0.5 points of MiniLM, see docs/speed.md). ``SentenceEncoder()`` runs
            MiniLM itself (a few hundred ms per query on two CPU cores).
        quality_model: ``"linear"`` (logistic regression, the default: best AIQ measured on
            RouterBench and LLMRouter), ``"knn"``, ``"rf"`` or ``"mlp"``.
        quality_params: Parameters of the quality model (see :class:`QualityPredictor`).
        policy: The decision rule (:class:`DecisionPolicy`).
        seed: Seeds tie-breaking and the estimators.
        online_ridge: Prior precision of the online heads updated by feedback. None (default):
            1 while no LLM has offline data (feedback is all a cold router learns from), 50 once
            fitted (the offline predictors are good; selection-biased feedback must not swamp
            them — measured on RouterBench, see docs/results.md).
        tracker: The :class:`LatencyTracker` that supplies expected waiting times.
        clock: Clock of the budget period.
        max_pending: Decisions kept by the in-memory log (oldest dropped first).
        log: Where decisions, feedback and outcomes go: a path (a durable :class:`SQLiteLog`),
            a :class:`RoutingLog`, or None for an in-memory log (lost with the process).
        store_prompts: Whether the log this router builds keeps prompt texts (True, the
            default: ``refit`` can re-embed them) or only their sha256 and representation.

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
    ) -> None:
        QualityPredictor(quality_model, **(quality_params or {}))  # validates kind and params
        self.specs: dict[str, LLMSpec] = {}
        for llm in llms:
            spec = llm if isinstance(llm, LLMSpec) else LLMSpec(str(llm))
            if spec.name in self.specs:
                raise ConfigError(f"LLM {spec.name!r} appears twice in the pool.")
            self.specs[spec.name] = spec
        self.encoder: QueryEncoder = encoder if encoder is not None else StaticEncoder()
        self.quality_model = quality_model
        self.quality_params = dict(quality_params or {})
        self.policy = policy or DecisionPolicy()
        self.seed = seed
        self.online_ridge = online_ridge
        self.tracker = tracker or LatencyTracker()
        self.clock = clock
        self.max_pending = max_pending
        self.maker = DecisionMaker(self.policy, seed=seed)
        self.budget = BudgetTracker(self.policy.budget, self.policy.budget_period_s, clock)
        self._quality: dict[str, QualityPredictor] = {}
        self._cost: dict[str, CostPredictor] = {}
        self._bank: PredictorBank | None = None
        self._heads: OnlineHeads | None = None
        self._lock = threading.RLock()
        self.c_ref_: float | None = None
        self._train: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._feedback_seq = 0
        self.log: RoutingLog = (
            log
            if isinstance(log, RoutingLog)
            else SQLiteLog(log, store_prompts=store_prompts)
            if log is not None
            else MemoryLog(max_pending, store_prompts=store_prompts)
        )
        for spec in self.specs.values():
            self._set_prior(spec)
            self.tracker.set_concurrency(spec.name, spec.max_concurrency)

    # ------------------------------------------------------------------ pool
    @property
    def llms(self) -> list[str]:
        return list(self.specs)

    def _check_llm(self, name: str) -> None:
        if name not in self.specs:
            raise UnknownLLMError(name, self.specs)

    def _set_prior(self, spec: LLMSpec) -> None:
        trained = {n: q.mean_ for n, q in self._quality.items() if q.n_samples_ > 0}
        priors = _prior_quality(list(self.specs.values()), trained)
        for name, q0 in priors.items():
            if (
                name == spec.name
                or name not in self._quality
                or self._quality[name].n_samples_ == 0
            ):
                self._quality[name] = QualityPredictor.prior(q0, self.quality_model)
        self._cost[spec.name] = CostPredictor(
            "prior",
            input_price=spec.input_price,
            output_price=spec.output_price,
            output_tokens=ASSUMED_OUTPUT_TOKENS,
        )
        self._bank = None

    def _fit_one(
        self, spec: LLMSpec, X: np.ndarray, F: np.ndarray, data: RoutingData, j: int
    ) -> None:
        self._quality[spec.name] = self._new_quality().fit(X, data.quality[:, j])
        out_tok = None if data.output_tokens is None else data.output_tokens[:, j]
        priced = bool(spec.input_price or spec.output_price)
        if priced and data.has_tokens and out_tok is not None and np.isfinite(out_tok).any():
            cost = CostPredictor(
                "tokens", input_price=spec.input_price, output_price=spec.output_price
            ).fit(F, out_tok)
        elif data.cost is not None and np.isfinite(data.cost[:, j]).any():
            cost = CostPredictor("regress").fit(F, data.cost[:, j])
        else:
            cost = CostPredictor(
                "prior",
                input_price=spec.input_price,
                output_price=spec.output_price,
                output_tokens=ASSUMED_OUTPUT_TOKENS,
            )
        self._cost[spec.name] = cost
        self._remember_training(spec.name, X, data.quality[:, j])

    def _new_quality(self) -> QualityPredictor:
        return QualityPredictor(self.quality_model, seed=self.seed, **self.quality_params)

    def _remember_training(self, name: str, X: np.ndarray, y: np.ndarray) -> None:
        """Keep each LLM's offline training set (X shared, not copied) for ``refit``."""
        self._train[name] = (X, np.asarray(y, dtype=float))

    def features(
        self, texts: Sequence[str], *, show_progress: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(
            self.encoder.encode(list(texts), show_progress=show_progress), dtype=np.float32
        )
        dims = {q.n_features_in_ for q in self._quality.values() if q.n_samples_ > 0}
        if dims and dims != {X.shape[1]}:
            raise ConfigError(
                f"The encoder gives {X.shape[1]}-dimensional vectors but the predictors were fit on "
                f"{sorted(dims)}-dimensional ones; use the encoder the router was trained with."
            )
        in_tok = np.array([estimate_tokens(t) for t in texts], dtype=float)
        return X, cost_features(X, in_tok)

    def head_ridge(self) -> float:
        """The ridge of new online heads (see ``online_ridge``)."""
        if self.online_ridge is not None:
            return self.online_ridge
        return 50.0 if any(q.n_samples_ > 0 for q in self._quality.values()) else 1.0

    def _ensure_heads(self, dim: int) -> OnlineHeads:
        """The online heads for ``dim``-dimensional representations, one per pool LLM.

        A new set is built completely before it replaces the old one, so a concurrent route
        never sees a half-built set.
        """
        with self._lock:
            heads = self._heads
            if heads is None or heads.dim != dim:
                heads = OnlineHeads(dim, ridge=self.head_ridge())
            for name in self.specs:
                if name not in heads:
                    heads.add(name)
            self._heads = heads
            return heads

    # ------------------------------------------------------------------ fit
    def fit(self, data: RoutingData, *, show_progress: bool = False) -> MixLLMRouter:
        """Fit every LLM's predictors on ``data`` (each LLM only on its own column).

        An encoder with an ``adapted(texts)`` method (the default :class:`StaticEncoder`) first
        learns its corpus part from ``data``'s queries: ``router.encoder`` becomes a copy adapted
        to them (the encoder passed in is left as it was, so routers sharing one never disturb
        each other), fixed until the next ``fit``.
        """
        if not isinstance(data, RoutingData):
            raise DataFormatError(f"fit() takes RoutingData, got {type(data).__name__}.")
        if len(data) == 0:
            raise DataFormatError("fit() got routing data with 0 queries.")
        with self._lock:
            if not self.specs:
                for name in data.llms:
                    self.specs[name] = data.specs.get(name, LLMSpec(name))
                    self.tracker.set_concurrency(name, self.specs[name].max_concurrency)
            missing = [n for n in self.specs if n not in data.llms]
            if missing:
                raise DataFormatError(
                    f"The pool's LLMs {missing} have no column in the data; it has {data.llms}."
                )
            if isinstance(self.encoder, AdaptableEncoder):  # this router's own adapted copy
                self.encoder = self.encoder.adapted(data.queries)
            X, F = self.features(data.queries, show_progress=show_progress)
            names = list(self.specs)
            iterator: Iterable[str] = names
            if show_progress:
                from tqdm.auto import tqdm

                iterator = tqdm(names, desc="fitting predictors", unit="LLM")
            for name in iterator:
                self._fit_one(self.specs[name], X, F, data, data.llms.index(name))
            observed = data.select_llms(names).mean_cost()
            self.c_ref_ = float(np.nanmax(observed)) if np.isfinite(observed).any() else None
            self._heads = None
            self._ensure_heads(X.shape[1])
            self._bank = None
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
            if spec.name in self.specs:
                raise ConfigError(f"LLM {spec.name!r} is already in the pool {self.llms}.")
            self.specs[spec.name] = spec
            self.tracker.set_concurrency(spec.name, spec.max_concurrency)
            if data is not None:
                if spec.name not in data.llms:
                    del self.specs[spec.name]
                    raise DataFormatError(
                        f"The data has no column for {spec.name!r}; it has {data.llms}."
                    )
                X, F = self.features(data.queries)
                self._fit_one(spec, X, F, data, data.llms.index(spec.name))
            else:
                self._set_prior(spec)
            if self._heads is not None:
                wide = max(4.0, self._heads.ridge) if prior_scale is None else prior_scale
                self._heads.add(spec.name, prior_scale=1.0 if data is not None else wide)
            self._bank = None
        return self

    def remove_llm(self, name: str) -> MixLLMRouter:
        """Remove an LLM; it is never chosen again. Feedback on its past decisions is logged only."""
        with self._lock:
            self._check_llm(name)
            if len(self.specs) == 1:
                raise EmptyPoolError(f"Cannot remove {name!r}: it is the last LLM in the pool.")
            del self.specs[name]
            self.tracker.set_concurrency(name, None)
            self._train.pop(name, None)
            self._quality.pop(name, None)
            self._cost.pop(name, None)
            if self._heads is not None:
                self._heads.remove(name)
            self._bank = None
        return self

    # ------------------------------------------------------------------ predict
    def _get_bank(self) -> tuple[list[str], PredictorBank]:
        with self._lock:
            if not self.specs:
                raise EmptyPoolError("The pool is empty: add an LLM or fit on data first.")
            names = list(self.specs)
            if self._bank is None:
                self._bank = PredictorBank(
                    [self._quality[n] for n in names], [self._cost[n] for n in names]
                )
            return names, self._bank

    def c_ref(self) -> float:
        """Reference cost normalising ĉ; it never depends on the queries being routed.

        The largest mean training cost once fitted on data with costs; otherwise the priciest
        pool LLM's cost for a reference call (``REFERENCE_INPUT_TOKENS`` in,
        ``ASSUMED_OUTPUT_TOKENS`` out); 1.0 when every LLM is free. A query therefore gets the
        same decision alone or inside any batch.
        """
        if self.c_ref_ is not None and self.c_ref_ > 0:
            return self.c_ref_
        pool = [s.cost(REFERENCE_INPUT_TOKENS, ASSUMED_OUTPUT_TOKENS) for s in self.specs.values()]
        top = max(pool, default=0.0)
        return top if top > 0 else 1.0

    def _predict_all(
        self, X: np.ndarray, F: np.ndarray
    ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        names, bank = self._get_bank()
        Q_off = bank.predict_quality(X)
        C = bank.predict_cost(F)
        heads = self._heads
        if heads is None or heads.dim != X.shape[1] or any(n not in heads for n in names):
            heads = self._ensure_heads(X.shape[1])
        corr, U = heads.predict(names, X)
        Q = np.clip(Q_off + corr, 0.0, 1.0)
        return names, Q_off, Q, C, U

    def predict_features(
        self, X: np.ndarray, F: np.ndarray
    ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """Quality, cost and uncertainty ``(n, m)`` for precomputed features (the hot path)."""
        names, _, Q, C, U = self._predict_all(X, F)
        return names, Q, C, U

    def predict(self, queries: Sequence[Query]) -> dict[str, np.ndarray | list[str]]:
        """Predicted ``quality``, ``cost`` and ``uncertainty`` per query and LLM, with ``llms``."""
        X, F = self.features([query_text(q) for q in queries])
        names, Q, C, U = self.predict_features(X, F)
        return {"llms": names, "quality": Q, "cost": C, "uncertainty": U}

    # ------------------------------------------------------------------ route
    def _decide(
        self,
        names: list[str],
        q: np.ndarray,
        c: np.ndarray,
        u: np.ndarray,
        policy: DecisionPolicy,
        c_ref: float,
        exclude: frozenset[str],
        input_tokens: float,
    ) -> RoutingDecision:
        wait = np.array([self.tracker.expected_wait(n) for n in names])
        blocked = []
        for n in names:
            window = self.specs[n].context_window
            too_long = window is not None and input_tokens > window
            blocked.append(
                f"prompt of ~{input_tokens:.0f} tokens > context window {window}" if too_long else ""
            )
        service = (
            np.array([self.tracker.service_time(n) for n in names])
            if policy.tau is not None
            else None
        )
        available = np.array([n not in exclude for n in names])
        return self.maker.decide(
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

    def _policy(self, lam: float | None, policy: DecisionPolicy | None) -> DecisionPolicy:
        p = policy or self.policy
        return p if lam is None else replace(p, lam=lam)

    def route_batch(
        self,
        queries: Sequence[Query],
        *,
        lam: float | None = None,
        policy: DecisionPolicy | None = None,
        exclude: Iterable[str] = (),
    ) -> list[RoutingDecision]:
        """Route several queries with one encoder pass and one prediction call."""
        p = self._policy(lam, policy)
        excluded = frozenset(exclude)
        for name in excluded:
            self._check_llm(name)
        texts = [query_text(q) for q in queries]
        X, F = self.features(texts)
        names, Q_off, Q, C, U = self._predict_all(X, F)
        c_ref = self.c_ref()
        decisions = []
        for i in range(len(texts)):
            d = self._decide(names, Q[i], C[i], U[i], p, c_ref, excluded, estimate_tokens(texts[i]))
            self.log.add_decision(d, texts[i], X[i], float(Q_off[i, names.index(d.llm)]))
            decisions.append(d)
        return decisions

    def route(
        self,
        query: Query,
        *,
        lam: float | None = None,
        policy: DecisionPolicy | None = None,
        exclude: Iterable[str] = (),
    ) -> RoutingDecision:
        """Choose the LLM for one query (a string or chat messages).

        Args:
            query: The prompt.
            lam: Overrides the policy's λ for this call.
            policy: Overrides the whole policy for this call.
            exclude: LLMs not to choose this time (e.g. one that just failed).
        """
        return self.route_batch([query], lam=lam, policy=policy, exclude=exclude)[0]

    # ------------------------------------------------------------------ feedback
    def feedback(
        self, decision_id: str, *, score: float | None = None, thumbs: bool | None = None
    ) -> FeedbackResult:
        """Learn from the outcome of a routed call.

        The feedback is written to the log first, then applied to the chosen LLM's online head
        (so a crash in between loses nothing: the head is rebuilt from the log on start).

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
        with self._lock:
            if self.log.has_feedback(decision_id):
                raise FeedbackError(f"Decision {decision_id!r} already received feedback.")
            logged = self.log.get_decision(decision_id)
            if logged is None:
                raise FeedbackError(
                    f"Unknown decision id {decision_id!r}: it was not made by this router (or its "
                    "log), or the in-memory log has dropped it."
                )
            reason = (
                "" if logged.llm in self.specs else f"LLM {logged.llm!r} is no longer in the pool"
            )
            seq = self.log.add_feedback(decision_id, logged.llm, value, kind, not reason, reason)
            if not reason:
                self._apply_feedback(logged.llm, logged.x, value - logged.offline_quality)
            self._feedback_seq = max(self._feedback_seq, seq)
        return FeedbackResult(decision_id, logged.llm, value, applied=not reason, reason=reason)

    def _apply_feedback(self, llm: str, x: np.ndarray, residual: float) -> None:
        heads = self._ensure_heads(int(x.shape[0]))
        heads.learn_one(llm, x, residual)

    def replay_log(self) -> int:
        """Apply logged feedback newer than the router's state to the online heads.

        Called on :meth:`load` with a log; returns the number of feedbacks applied.
        """
        applied = 0
        with self._lock:
            for fb in self.log.feedback(since_seq=self._feedback_seq):
                if fb.applied and fb.llm in self.specs:
                    self._apply_feedback(fb.llm, fb.x, fb.score - fb.offline_quality)
                    applied += 1
                self._feedback_seq = max(self._feedback_seq, fb.seq)
        return applied

    def refit(self, *, min_feedback: int = 20, show_progress: bool = False) -> dict[str, int]:
        """Retrain the offline quality predictors on the training data plus all logged feedback.

        Each LLM is refit on its own observations only. An LLM added without data needs
        ``min_feedback`` of them first (below that it keeps its prior and online head). The refit
        LLMs' online heads restart from zero, since what they had learned is now part of the
        offline predictors. With an encoder that ``fit`` adapts (the default
        :class:`StaticEncoder`), the feedback queries are embedded again, so feedback logged
        before the last ``fit`` shares the current representation.

        Returns:
            The number of feedback records used per refit LLM.
        """
        with self._lock:
            per_llm: dict[str, list[tuple[np.ndarray, float]]] = {}
            last = self._feedback_seq
            feedback = list(self.log.feedback(since_seq=0))
            stored = [i for i, fb in enumerate(feedback) if fb.query is not None]
            X_now: dict[int, np.ndarray] = {}
            if stored and isinstance(self.encoder, AdaptableEncoder):
                # features that change with fit (the static encoder's corpus part): feedback
                # logged before the last fit was embedded differently, so embed it again (a log
                # that keeps no prompts can only offer the representation logged at the time)
                again = self.features([feedback[i].query or "" for i in stored])[0]
                X_now = dict(zip(stored, again))
            for i, fb in enumerate(feedback):
                last = max(last, fb.seq)
                if fb.llm in self.specs:
                    per_llm.setdefault(fb.llm, []).append((X_now.get(i, fb.x), fb.score))
            used: dict[str, int] = {}
            names = [  # LLMs with offline data refit on any feedback; newcomers need enough
                n for n, obs in per_llm.items() if n in self._train or len(obs) >= min_feedback
            ]
            iterator: Iterable[str] = names
            if show_progress:
                from tqdm.auto import tqdm

                iterator = tqdm(names, desc="refitting", unit="LLM")
            for name in iterator:
                Xf = np.stack([x for x, _ in per_llm[name]]).astype(np.float32)
                yf = np.array([y for _, y in per_llm[name]])
                if name in self._train:
                    Xf = np.vstack([self._train[name][0], Xf])
                    yf = np.concatenate([self._train[name][1], yf])
                self._quality[name] = self._new_quality().fit(Xf, yf)
                used[name] = len(per_llm[name])
            if self._heads is not None:  # what the refit LLMs' heads knew is offline now
                for name in used:
                    self._heads.remove(name)
                    self._heads.add(name)
            self._feedback_seq = last
            self._bank = None
        return used

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

        Outcomes go to the router's log (:attr:`log`).
        """
        if cost is not None:
            if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not cost >= 0:
                raise ConfigError(f"cost must be a number >= 0 (USD), got {cost!r}.")
            self.budget.charge(cost)
        self.log.add_outcome(
            decision_id,
            latency_s=latency_s,
            cost=cost,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            error=error,
        )

    def decision_llm(self, decision_id: str) -> str | None:
        """The LLM a logged decision chose, or None when the log does not know the id."""
        logged = self.log.get_decision(decision_id)
        return None if logged is None else logged.llm

    # ------------------------------------------------------------------ persistence
    def get_state(self) -> RouterState:
        """Everything this router learned, as one validated :class:`RouterState`.

        A consistent snapshot: taken under the router's lock, with the online heads copied (they
        change in place); estimators and training arrays are shared, read-only.
        """
        with self._lock:
            shared: dict[int, np.ndarray] = {}  # one read-only view per shared training matrix

            def frozen(a: np.ndarray) -> np.ndarray:
                if id(a) not in shared:
                    view = a.view()
                    view.flags.writeable = False
                    shared[id(a)] = view
                return shared[id(a)]

            llms = tuple(
                LLMState(
                    spec,
                    self._quality[name].get_state(),
                    self._cost[name].get_state(),
                    None
                    if name not in self._train
                    else (frozen(self._train[name][0]), frozen(self._train[name][1])),
                )
                for name, spec in self.specs.items()
            )
            heads = self._heads
            return RouterState(
                llms=llms,
                policy=self.policy,
                encoder_config=self.encoder.get_config(),
                quality_model=self.quality_model,
                quality_params=dict(self.quality_params),
                seed=self.seed,
                online_ridge=self.online_ridge,
                heads=None if heads is None else heads.get_state(list(self.specs)),
                c_ref=self.c_ref_,
                feedback_seq=self._feedback_seq,
                encoder=self.encoder,
            )

    @classmethod
    def from_state(
        cls,
        state: RouterState,
        *,
        encoder: QueryEncoder | None = None,
        tracker: LatencyTracker | None = None,
        log: RoutingLog | str | Path | None = None,
    ) -> MixLLMRouter:
        """A router that decides exactly as the one whose :meth:`get_state` gave ``state``.

        Args:
            state: A :class:`RouterState`.
            encoder: The encoder; defaults to ``state.encoder``.
            tracker, log: As in the constructor. Feedback in ``log`` newer than the state is not
                applied here: call :meth:`replay_log` (``load`` does).

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
        )
        for llm in state.llms:
            router._quality[llm.name] = QualityPredictor.from_state(llm.quality)
            router._cost[llm.name] = CostPredictor.from_state(llm.cost)
            if llm.train is not None:
                router._train[llm.name] = llm.train
        router._heads = None if state.heads is None else OnlineHeads.from_state(state.heads)
        router.c_ref_ = state.c_ref
        router._feedback_seq = state.feedback_seq
        router._bank = None
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
    ) -> MixLLMRouter:
        """Load a router saved with :meth:`save`; every file is checked before it is used.

        With ``encoder``, that encoder is used and the saved one is not rebuilt. With ``log``,
        feedback logged after the save is replayed into the online heads. With
        ``signing_key``, a directory whose signature is missing or wrong is refused.

        Raises:
            CorruptStateError: a missing, modified, truncated or malformed file.
        """
        state = read_state(Path(directory), load_encoder=encoder is None, signing_key=signing_key)
        router = cls.from_state(state, encoder=encoder, tracker=tracker, log=log)
        router.replay_log()
        return router
