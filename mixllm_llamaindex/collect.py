"""Feedback per user-visible answer: collect the routing decisions made while producing it.

A query engine's ``Response`` does not carry the LLM's ``additional_kwargs``, and one answer can
take several LLM calls (refine, tree summarize, an agent's steps). ``MixLLM.collect()`` opens a
block; every decision of that adapter whose child answered inside it (in this thread, or in any
asyncio task started inside it) lands in the :class:`AnswerDecisions` it yields, and one
``feedback`` call reaches all of them. Blocks nest; concurrent tasks each see only their own block
(``contextvars``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from mixllm_core import FeedbackError, FeedbackResult, RoutingDecision

__all__ = ["AnswerDecisions", "collecting", "notify"]

_ACTIVE: ContextVar[tuple[AnswerDecisions, ...]] = ContextVar(
    "mixllm_llamaindex_collectors", default=()
)


class AnswerDecisions:
    """The decisions one adapter made for one answer; yielded by ``MixLLM.collect()``.

    Example:
        >>> with llm.collect() as answer:          # doctest: +SKIP
        ...     response = query_engine.query("What is MixLLM?")
        >>> answer.llms                             # doctest: +SKIP
        ['small', 'small']
        >>> answer.feedback(thumbs=True)            # doctest: +SKIP
    """

    def __init__(self, owner: Any) -> None:
        self._owner = owner
        self._decisions: list[RoutingDecision] = []
        self._lock = threading.Lock()
        self._results: list[FeedbackResult] | None = None

    def _add(self, decision: RoutingDecision) -> None:
        with self._lock:
            self._decisions.append(decision)

    @property
    def decisions(self) -> tuple[RoutingDecision, ...]:
        """Decisions whose child answered, in the order they were made."""
        with self._lock:
            return tuple(self._decisions)

    @property
    def decision_ids(self) -> list[str]:
        return [d.decision_id for d in self.decisions]

    @property
    def llms(self) -> list[str]:
        """The child that answered each call, in order."""
        return [d.llm for d in self.decisions]

    def __len__(self) -> int:
        return len(self.decisions)

    def feedback(
        self, *, score: float | None = None, thumbs: bool | None = None
    ) -> list[FeedbackResult]:
        """Give the answer's feedback (a score in [0, 1] or thumbs) to every decision behind it.

        Raises:
            FeedbackError: no decision was collected, or this answer already received feedback.
        """
        decisions = self.decisions
        if not decisions:
            raise FeedbackError(
                "No routing decision was made inside this collect() block; "
                "run the query (and consume its stream) inside the block."
            )
        if self._results is not None:
            raise FeedbackError(
                f"This answer ({len(decisions)} decisions) already received feedback."
            )
        router = self._owner.router
        self._results = [
            router.feedback(d.decision_id, score=score, thumbs=thumbs) for d in decisions
        ]
        return list(self._results)

    def __repr__(self) -> str:
        return f"AnswerDecisions(llms={self.llms!r})"


@contextmanager
def collecting(owner: Any) -> Iterator[AnswerDecisions]:
    """Open a collection block for ``owner`` (a ``MixLLM``); see ``MixLLM.collect``."""
    answer = AnswerDecisions(owner)
    token = _ACTIVE.set((*_ACTIVE.get(), answer))
    try:
        yield answer
    finally:
        _ACTIVE.reset(token)


def notify(owner: Any, decision: RoutingDecision) -> None:
    """Add ``decision`` to every open block of ``owner`` in the current context."""
    for answer in _ACTIVE.get():
        if answer._owner is owner:
            answer._add(decision)
