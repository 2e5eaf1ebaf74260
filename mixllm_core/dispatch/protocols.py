"""What the request path needs of its collaborators, as Protocols.

:class:`DispatchRouter` is what a :class:`~mixllm_core.dispatch.Dispatcher` needs of a router
(:class:`~mixllm_core.MixLLMRouter` has it); :class:`RunContext` is what one call's attempts
(:mod:`.run`) read from the dispatcher that drives them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from ..decision import DecisionPolicy, RoutingDecision
from ..latency import LatencyTracker
from ..spec import LLMSpec
from ..text import Query
from .health import ChildHealth, CooldownBoard
from .results import ReplyReader
from .retry import RetryPolicy
from .validate import AnswerValidator

__all__ = ["DispatchRouter", "RunContext"]


class DispatchRouter(Protocol):
    """What the :class:`Dispatcher` needs of a router (:class:`~mixllm_core.MixLLMRouter` has it)."""

    @property
    def specs(self) -> Mapping[str, LLMSpec]: ...

    @property
    def tracker(self) -> LatencyTracker: ...

    @property
    def cooldown_board(self) -> CooldownBoard | None:
        """Where the dispatcher shares cooldowns with other replicas (None: nowhere)."""
        ...

    def route(
        self,
        query: Query,
        *,
        lam: float | None = ...,
        policy: DecisionPolicy | None = ...,
        exclude: Iterable[str] = ...,
        task: str | None = ...,
    ) -> RoutingDecision: ...

    def route_batch(
        self,
        queries: Sequence[Query],
        *,
        lam: float | None = ...,
        policy: DecisionPolicy | None = ...,
        exclude: Iterable[str] = ...,
        tasks: Sequence[str | None] | None = ...,
    ) -> list[RoutingDecision]: ...

    def record_outcome(
        self,
        decision_id: str,
        *,
        latency_s: float | None = ...,
        cost: float | None = ...,
        input_tokens: int | None = ...,
        output_tokens: int | None = ...,
        error: str | None = ...,
    ) -> None: ...


class RunContext(Protocol):
    """The settings and shared state of the dispatcher a run belongs to."""

    router: DispatchRouter
    max_retries: int
    policy: RetryPolicy
    validator: AnswerValidator | None
    clock: Callable[[], float]
    rng: random.Random
    reader: ReplyReader
    health: ChildHealth
