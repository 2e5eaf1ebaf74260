"""`MixLLMDecisionModel`: the router as a LangChain decision model (``langchain_core.decisions``).

LangChain's ``ModelRouterMiddleware(choices=..., instructions=..., classifier=...)`` asks its
classifier one ``Choice`` question per agent run: the latest human message as the state, one
label per model with the ``criteria`` text of each. This model answers it with a
:class:`~mixllm_core.MixLLMRouter` whose LLMs are the labels:

- **The choice** is the router's decision for the message (predicted quality vs. cost vs.
  latency, exploration included); it is logged on the router under a decision id, which the
  answer carries (:class:`MixLLMChoiceAnswer`) so that feedback finds it.
- **Probabilities** are a softmax of the router's decision scores over the labels it may choose,
  ``p_i ∝ exp(s_i / temperature)`` (labels its constraints rule out get 0); **confidence** is the
  probability of the chosen label. They rank the labels by the router's own trade-off; they are
  not calibrated chances of being right.
- **Cold start.** With no ``router``, the first question builds a cold-start router over its
  labels (:func:`mixllm_core.factory.build_router`; optional ``prices`` per label), and labels
  asked about later join it. Its zero-shot prior comes from the criteria: each label's online head
  is given one pseudo-feedback per criteria text, ``+prior`` on its own criteria and
  ``-prior/(n-1)`` on the other labels' (n labels), embedded by the router's encoder like any
  query. A message that reads like a label's criteria therefore starts with a higher predicted
  quality for that label; every head sees the same pseudo-queries, so none gains or loses
  exploration by it. The pseudo-feedback is logged like real feedback, and real feedback then
  corrects it. The middleware's ``instructions`` are not interpreted: the trade-off is ``lam``.
- **Task hint.** When the caller knows the message's task (one the router was trained on; see
  :meth:`MixLLMRouter.route <mixllm_core.MixLLMRouter.route>`), it can tell the router, per run:
  ``agent.invoke(x, config={"configurable": {"mixllm_task": "math"}})`` (the middleware passes
  the agent's config on to its classifier), or ``classifier.invoke(request, task="math")`` when
  asking the classifier directly (or ``.bind(task=...)``). It needs a ``router`` with task
  features; the cold-start router has none, so there a hint raises ``ConfigError``.
- **Feedback** (:meth:`MixLLMDecisionModel.feedback`) takes the agent's output state, the
  answer, the response, a decision id, the classifier's run id, or the agent's run id (when the
  agent was invoked with ``config={"run_id": ...}``); :meth:`MixLLMDecisionModel.collect` gathers
  the decisions made inside a block.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.decisions import (
    BaseDecisionModel,
    Choice,
    ChoiceAnswer,
    ClassifierRequest,
    ClassifierResponse,
    Question,
    State,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import ensure_config
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from mixllm_core import (
    ConfigError,
    FeedbackError,
    FeedbackResult,
    LLMSpec,
    MixLLMRouter,
    QueryEncoder,
    RoutingDecision,
)
from mixllm_core.collect import AnswerDecisions, collecting, notify
from mixllm_core.factory import Price, build_router, policy_override, spec_from_price
from mixllm_core.log import RoutingLog
from mixllm_core.prices import is_model_ref, spec_of
from mixllm_core.text import query_text

from .callbacks import RunLedger, graph_run_id

__all__ = ["DEFAULT_PRIOR", "MixLLMChoiceAnswer", "MixLLMDecisionModel"]

#: The key of a run's ``config["configurable"]`` whose value is a task hint for the router.
TASK_KEY = "mixllm_task"
#: Pseudo-feedback of the criteria prior of a cold-start router (see the module docstring).
DEFAULT_PRIOR = 0.2
#: Softmax temperature turning decision scores into probabilities: a score gap of 0.05 (a
#: quality gap of 0.1 at λ = 1) gives odds of e : 1.
DEFAULT_TEMPERATURE = 0.05


class MixLLMChoiceAnswer(ChoiceAnswer):
    """A :class:`~langchain_core.decisions.ChoiceAnswer` naming the routing decision behind it."""

    decision_id: str
    """The router's decision id: feedback on this answer reaches it."""


def _state_text(state: State) -> str:
    """The text the router embeds for a decision model's state."""
    if isinstance(state, str):
        return query_text(state)
    if isinstance(state, Mapping):
        return json.dumps(state, default=str, ensure_ascii=False)
    if isinstance(state, (list, tuple)):
        return query_text(state)
    return query_text([state])  # one message


def _criteria_text(label: str, criteria: Any) -> str:
    if criteria is None:
        return label
    body = criteria if isinstance(criteria, str) else json.dumps(criteria, ensure_ascii=False)
    return f"{label}: {body}"


def _run_ids() -> list[UUID]:
    """Run ids a decision made now is filed under: this classifier run's and the agent's."""
    manager = ensure_config().get("callbacks")
    own = manager.parent_run_id if isinstance(manager, BaseCallbackManager) else None
    return [r for r in (own, graph_run_id()) if r is not None]


def _with_task(config: RunnableConfig | None, task: object) -> RunnableConfig | None:
    """``config`` with ``task`` under :data:`TASK_KEY` (unchanged when ``task`` is None)."""
    if task is None:
        return config
    config = ensure_config(config)
    config["configurable"] = {**config.get("configurable", {}), TASK_KEY: task}
    return config


def _task_hint() -> Any:
    """The task hint of the run being answered (see :data:`TASK_KEY`), or None."""
    return ensure_config().get("configurable", {}).get(TASK_KEY)


def _probabilities(
    decision: RoutingDecision, labels: list[str], temperature: float
) -> dict[str, float]:
    """Softmax of the decision scores over the labels the router could choose."""
    scores = {c.llm: c.score for c in decision.candidates if c.eligible and c.llm in labels}
    if not scores:  # the constraints left nothing: the router fell back on one label
        return {label: float(label == decision.llm) for label in labels}
    top = max(scores.values())
    weights = {n: math.exp((s - top) / temperature) for n, s in scores.items()}
    total = sum(weights.values())
    return {label: weights.get(label, 0.0) / total for label in labels}


class MixLLMDecisionModel(BaseDecisionModel):
    """A LangChain decision model that answers ``Choice`` questions with the MixLLM router.

    Made to be the ``classifier`` of ``langchain.agents.middleware.ModelRouterMiddleware``; it
    works cold with no arguments (see the module docstring for how it decides and learns).

    Args:
        router: A router whose LLMs include every label it will be asked about. None: a
            cold-start router over the labels, built at the first question.
        prices: For the cold-start router, ``{label: (input $/Mtok, output $/Mtok)}`` (or
            LLMSpec fields). A label without one named ``"provider:model"`` (e.g.
            ``"openai:gpt-4o-mini"``) gets its list price (:mod:`mixllm_core.prices`), whether
            it is asked about first or later; any other costs 0: the criteria prior and feedback
            alone then decide.
        lam: Quality weight λ (larger: quality first). None: the router's own (a cold-start
            router's is 1.0); a value applies to this model's decisions only.
        alpha: Exploration weight; None: the router's own (a cold-start router's is 0.1).
        encoder: Query encoder of the cold-start router (default: ``StaticEncoder``).
        seed: Seed of the cold-start router.
        log: Log of the cold-start router: a path (SQLite) or a ``RoutingLog``; None: in memory.
        prior: Weight of the criteria prior (pseudo-feedback per criteria text, in [0, 0.5]).
            None: ``DEFAULT_PRIOR`` for a cold-start router, 0 (no pseudo-feedback written) for
            a given one.
        temperature: Softmax temperature of the probabilities (> 0).
        model: The name reported as the model that answered.

    Example:
        >>> from langchain_core.decisions import Choice
        >>> from mixllm_core.testing import HashingEncoder
        >>> classifier = MixLLMDecisionModel(encoder=HashingEncoder())
        >>> question = Choice(instructions="Which model should answer?", criteria={
        ...     "small": "greetings and small talk", "large": "math proofs and hard code"})
        >>> response = classifier.invoke(
        ...     {"state": "Write the math proofs", "questions": {"route": question}})
        >>> answer = response.choices["route"]
        >>> answer.choice, answer.probabilities["large"] > 0.5
        ('large', True)
        >>> [r.llm for r in classifier.feedback(answer, thumbs=True)]
        ['large']
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str = "mixllm-router"
    router: MixLLMRouter | None = Field(default=None, repr=False, exclude=True)
    prices: dict[str, Any] | None = None
    lam: float | None = None
    alpha: float | None = None
    encoder: QueryEncoder | None = Field(default=None, repr=False, exclude=True)
    seed: int = 0
    log: RoutingLog | str | Path | None = Field(default=None, repr=False, exclude=True)
    prior: float | None = None
    temperature: float = DEFAULT_TEMPERATURE

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _ledger: RunLedger = PrivateAttr(default_factory=RunLedger)
    _owns_router: bool = PrivateAttr(default=False)
    _primed: set[tuple[str, str, str]] = PrivateAttr(default_factory=set)

    @model_validator(mode="after")
    def _check(self) -> MixLLMDecisionModel:
        if self.router is not None:
            given = [n for n in ("prices", "encoder", "log") if getattr(self, n) is not None]
            if given:
                raise ConfigError(
                    f"{' and '.join(given)} configure a cold-start router; with router= given, "
                    "put them in that router instead."
                )
        if not (isinstance(self.temperature, (int, float)) and self.temperature > 0):
            raise ConfigError(f"temperature must be a number > 0, got {self.temperature!r}.")
        if self.prior is not None and not 0.0 <= self.prior <= 0.5:
            raise ConfigError(f"prior must be in [0, 0.5], got {self.prior!r}.")
        return self

    @property
    def _provider(self) -> str:
        return "mixllm"

    # ------------------------------------------------------------------ the pool and its prior
    def _spec(self, label: str) -> LLMSpec:
        """The spec of a label joining the pool: its given price, else its list price."""
        prices = self.prices or {}
        if label in prices:
            return spec_from_price(label, prices[label])
        return spec_of(label) if is_model_ref(label) else LLMSpec(label)

    def _pool(self, criteria: dict[str, str]) -> MixLLMRouter:
        """The router, holding every label of ``criteria`` and primed with their prior."""
        labels = list(criteria)
        with self._lock:
            if self.router is None:
                prices: dict[str, Price] = {
                    n: p for n, p in (self.prices or {}).items() if n in criteria
                }
                self.router = build_router(
                    labels,
                    prices=prices,
                    lam=self.lam,
                    alpha=self.alpha,
                    encoder=self.encoder,
                    seed=self.seed,
                    log=self.log,
                )
                self._owns_router = True
            router = self.router
            missing = [n for n in labels if n not in router.specs]
            if missing and not self._owns_router:
                raise ConfigError(
                    f"The labels {missing} are not LLMs of the router given ({router.llms}); "
                    "a router given as router= must hold every label asked about."
                )
            for label in missing:
                router.add_llm(self._spec(label))
            weight = self.prior if self.prior is not None else DEFAULT_PRIOR * self._owns_router
            if weight > 0 and len(labels) > 1:
                self._prime(router, criteria, weight)
            return router

    def _prime(self, router: MixLLMRouter, criteria: dict[str, str], weight: float) -> None:
        """Pseudo-feedback of the criteria prior, once per (label, criteria text) pair."""
        others = -weight / (len(criteria) - 1)
        for head in criteria:
            rows = [(k, t) for k, t in criteria.items() if (head, k, t) not in self._primed]
            if not rows:
                continue
            only = [n for n in router.llms if n != head]
            decisions = router.route_batch([t for _, t in rows], exclude=only)
            for (label, text), decision in zip(rows, decisions):
                logged = router.log.get_decision(decision.decision_id)
                base = decision.chosen.quality if logged is None else logged.offline_quality
                shift = weight if label == head else others
                router.feedback(decision.decision_id, score=min(1.0, max(0.0, base + shift)))
                self._primed.add((head, label, text))

    # ------------------------------------------------------------------ answering
    def invoke(
        self,
        input: ClassifierRequest,
        config: RunnableConfig | None = None,
        *,
        task: str | None = None,
        **kwargs: Any,
    ) -> ClassifierResponse:
        """Answer a request (``{"state": ..., "questions": {...}}``).

        Args:
            input: The state and the questions.
            config: The run's config; its ``configurable["mixllm_task"]`` is a task hint.
            task: The message's task when the caller knows it, one the router was trained on
                (overrides the config's); None: the config's, else the router's tagger decides.
                A router without task features, or a task it does not know:
                :class:`~mixllm_core.ConfigError`.
            **kwargs: Accepted for ``Runnable`` compatibility and ignored.

        Example:
            >>> from mixllm_core import MixLLMRouter
            >>> from mixllm_core.encoders import TaggedEncoder
            >>> from mixllm_core.testing import HashingEncoder, make_synthetic_world
            >>> router = MixLLMRouter(encoder=TaggedEncoder(HashingEncoder(), fit_with_router=True))
            >>> classifier = MixLLMDecisionModel(router=router.fit(make_synthetic_world(400)))
            >>> question = Choice(instructions="Which model?", criteria=dict.fromkeys(router.llms))
            >>> request = {"state": "Hello there", "questions": {"route": question}}
            >>> [classifier.invoke(request, task=t).choices["route"].choice
            ...  for t in (None, "code", "math")]
            ['mid-70b', 'coder-34b', 'math-pro']
        """
        return super().invoke(input, _with_task(config, task), **kwargs)

    async def ainvoke(
        self,
        input: ClassifierRequest,
        config: RunnableConfig | None = None,
        *,
        task: str | None = None,
        **kwargs: Any,
    ) -> ClassifierResponse:
        """:meth:`invoke`, asynchronously."""
        return await super().ainvoke(input, _with_task(config, task), **kwargs)

    def _answer(
        self, text: str, question: Question, runs: list[UUID], task: str | None = None
    ) -> MixLLMChoiceAnswer:
        if not isinstance(question, Choice):
            raise ConfigError(
                f"MixLLMDecisionModel answers Choice questions (one label per model), got a "
                f"{type(question).__name__} question."
            )
        criteria = {str(n): _criteria_text(str(n), c) for n, c in question.criteria.items()}
        router = self._pool(criteria)
        labels = list(criteria)
        decision = router.route(
            text,
            exclude=[n for n in router.llms if n not in criteria],
            policy=policy_override(router, lam=self.lam, alpha=self.alpha).get("policy"),
            task=task,
        )
        notify(self, decision)
        for run_id in runs:
            self._ledger.add(run_id, None, decision.decision_id)
        probabilities = _probabilities(decision, labels, self.temperature)
        return MixLLMChoiceAnswer(
            type="choice",
            choice=decision.llm,
            probabilities=probabilities,
            confidence=min(1.0, probabilities[decision.llm]),
            decision_id=decision.decision_id,
        )

    def _classify(self, state: State, questions: dict[str, Question]) -> ClassifierResponse:
        if not questions:
            raise ConfigError("A classifier request needs at least one question.")
        text, runs, task = _state_text(state), _run_ids(), _task_hint()
        answers = {name: self._answer(text, q, runs, task) for name, q in questions.items()}
        ids = [a.decision_id for a in answers.values()]
        return ClassifierResponse(
            model=self.model,
            answers=dict(answers),
            request_id=ids[0] if len(ids) == 1 else None,
        )

    # ------------------------------------------------------------------ feedback
    def collect(self) -> AbstractContextManager[AnswerDecisions]:
        """Collect the decisions made inside a ``with`` block (e.g. around ``agent.invoke``)."""
        return collecting(self)

    def _known(self, decision_id: str) -> bool:
        return self.router is not None and self.router.log.get_decision(decision_id) is not None

    def decision_ids(self, target: Any) -> list[str]:
        """The decision ids behind ``target`` (see :meth:`feedback`)."""
        if isinstance(target, MixLLMChoiceAnswer):
            return [target.decision_id]
        if isinstance(target, ClassifierResponse):
            return [
                a.decision_id for a in target.answers.values() if isinstance(a, MixLLMChoiceAnswer)
            ]
        if isinstance(target, Mapping):
            if isinstance(target.get("decision_id"), str):
                return [target["decision_id"]]
            ids: list[str] = []
            for value in target.values():
                if isinstance(value, (MixLLMChoiceAnswer, ClassifierResponse)) or (
                    isinstance(value, Mapping) and isinstance(value.get("decision_id"), str)
                ):
                    ids += self.decision_ids(value)
            return ids
        if isinstance(target, UUID):
            return self._ledger.decisions(target)
        if isinstance(target, str):
            try:
                return self._ledger.decisions(UUID(target)) or [target]
            except ValueError:
                return [target]
        return []

    def feedback(
        self,
        target: Any,
        *,
        score: float | None = None,
        thumbs: bool | None = None,
    ) -> list[FeedbackResult]:
        """Tell the router how well the chosen model did, after the run.

        Args:
            target: What identifies the decision(s): the agent's output state (its
                ``model_route``), a :class:`MixLLMChoiceAnswer` or the
                :class:`~langchain_core.decisions.ClassifierResponse`, an
                :class:`~mixllm_core.collect.AnswerDecisions` from :meth:`collect`, a decision
                id, the classifier's run id, or the run id the agent was invoked with
                (``agent.invoke(x, config={"run_id": run_id})``).
            score: A refined quality score in [0, 1], or
            thumbs: True (good) / False (bad). Give exactly one.

        Returns:
            One :class:`~mixllm_core.FeedbackResult` per decision reached.

        Raises:
            FeedbackError: nothing known under ``target``, feedback already given, or a bad score.
        """
        if isinstance(target, AnswerDecisions):
            return target.feedback(score=score, thumbs=thumbs)
        ids = self.decision_ids(target)
        unknown = [d for d in ids if not self._known(d)]
        if not ids or unknown:
            raise FeedbackError(
                f"No routing decision of this MixLLMDecisionModel is known under {target!r:.80}. "
                "Pass the agent's output state, its 'model_route' answer, a decision id, or the "
                "run id the agent was invoked with (config={'run_id': run_id}); or wrap the run "
                "in `with model.collect() as answer:`."
            )
        router = self.router
        if router is None:  # pragma: no cover - _known() is False without a router
            raise FeedbackError("This MixLLMDecisionModel has decided nothing yet.")
        return [router.feedback(d, score=score, thumbs=thumbs) for d in ids]
