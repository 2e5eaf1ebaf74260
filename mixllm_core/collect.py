"""The decisions behind one user-visible answer, for feedback when the answer carries none.

An integration's answer often loses its routing metadata on the way to the user: a LangChain
output parser returns a plain string, a LlamaIndex query engine returns a ``Response``, and one
answer can take several LLM calls (an agent's steps, refine). Two framework-free ways back:

- :func:`collecting` opens a block; every decision an integration reports with :func:`notify`
  while the block is open (in this thread, or in any asyncio task or copied context started
  inside it) lands in the :class:`AnswerDecisions` it yields. Blocks nest; concurrent tasks each
  see only their own block (``contextvars``).
- :class:`AnswerTexts` remembers the text of recent answers (as sha256 digests, bounded) so that
  feedback given on the text a parser returned finds its decision.

Both adapters (``MixLLMChat.collect()``, ``MixLLM.collect()``) use this module.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

from .decision import RoutingDecision
from .errors import ConfigError, FeedbackError
from .router import FeedbackResult, MixLLMRouter

__all__ = ["AnswerDecisions", "AnswerTexts", "Routed", "collecting", "notify"]


class Routed(Protocol):
    """What a block collects for: an integration with a router (None until it has one)."""

    @property
    def router(self) -> MixLLMRouter | None: ...


_ACTIVE: ContextVar[tuple[AnswerDecisions, ...]] = ContextVar("mixllm_collectors", default=())


def _router_of(owner: Routed) -> MixLLMRouter:
    router = owner.router
    if router is None:
        raise FeedbackError(f"{type(owner).__name__} has no router yet: it has routed nothing.")
    return router


class AnswerDecisions:
    """The decisions one integration made for one answer; yielded by ``collect()``.

    Example:
        >>> from mixllm_core.factory import build_router
        >>> from mixllm_core.testing import HashingEncoder
        >>> class App:  # any integration with a ``router`` attribute
        ...     router = build_router(["small", "large"], prices={"small": (0.15, 0.6),
        ...                           "large": (2.5, 10.0)}, lam=0.5, encoder=HashingEncoder())
        >>> app = App()
        >>> with collecting(app) as answer:
        ...     notify(app, app.router.route("Say hi"))
        >>> answer.llms
        ['small']
        >>> [r.applied for r in answer.feedback(thumbs=True)]
        [True]
    """

    def __init__(self, owner: Routed) -> None:
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
        """The LLM that answered each call, in order."""
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
                "No routing decision was made inside this collect() block; run the call (and "
                "consume its stream) inside the block."
            )
        if self._results is not None:
            raise FeedbackError(
                f"This answer ({len(decisions)} decisions) already received feedback."
            )
        router = _router_of(self._owner)
        self._results = [
            router.feedback(d.decision_id, score=score, thumbs=thumbs) for d in decisions
        ]
        return list(self._results)

    def __repr__(self) -> str:
        return f"AnswerDecisions(llms={self.llms!r})"


@contextmanager
def collecting(owner: Routed) -> Iterator[AnswerDecisions]:
    """Open a collection block for ``owner``: what an integration's ``collect()`` returns."""
    answer = AnswerDecisions(owner)
    token = _ACTIVE.set((*_ACTIVE.get(), answer))
    try:
        yield answer
    finally:
        _ACTIVE.reset(token)


def notify(owner: Routed, decision: RoutingDecision) -> None:
    """Add ``decision`` to every open block of ``owner`` in the current context."""
    for answer in _ACTIVE.get():
        if answer._owner is owner:
            answer._add(decision)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class AnswerTexts:
    """The decisions behind the last ``max_answers`` answer texts (thread-safe, bounded).

    Only a sha256 digest of each text is kept, never the text.

    Args:
        max_answers: Distinct answer texts remembered (the oldest is forgotten first).

    Example:
        >>> texts = AnswerTexts(max_answers=2)
        >>> texts.add("Paris.", "d1"); texts.add("Rome.", "d2"); texts.add("Paris.", "d3")
        >>> texts.decisions("Paris."), texts.decisions("Oslo.")
        (['d1', 'd3'], [])
    """

    def __init__(self, max_answers: int = 1024) -> None:
        if not isinstance(max_answers, int) or max_answers < 1:
            raise ConfigError(f"max_answers must be an int >= 1, got {max_answers!r}.")
        self.max_answers = max_answers
        self._ids: OrderedDict[bytes, list[str]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, text: str, decision_id: str) -> None:
        """Remember that ``decision_id`` answered with ``text``."""
        key = _digest(text)
        with self._lock:
            ids = self._ids.pop(key, [])
            ids = [*ids, decision_id][-self.max_answers :]
            self._ids[key] = ids
            while len(self._ids) > self.max_answers:
                self._ids.popitem(last=False)

    def decisions(self, text: str) -> list[str]:
        """Decision ids that answered with exactly ``text``, oldest first (empty: unknown)."""
        with self._lock:
            return list(self._ids.get(_digest(text), ()))
