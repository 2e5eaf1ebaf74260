"""What a dispatched call produced: each attempt, the child's reply as read, the final result.

:class:`Reply` is what an adapter's :class:`ReplyReader` reads off a child's answer (its text,
whether it calls tools, the token counts the child reported); :class:`Attempt` is one try of one
child; :class:`DispatchResult` is the answer with its decision, usage and every attempt, and
:meth:`DispatchResult.to_dict` the routing metadata both integrations attach to an answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ..decision import RoutingDecision
from ..spec import CallUsage

__all__ = ["Attempt", "DispatchResult", "Reply", "ReplyReader", "read_text"]


@dataclass(frozen=True)
class Attempt:
    """One try of one child; ``error`` (redacted) and ``kind`` are empty for the one that
    answered. ``kind`` is an :class:`~mixllm_core.dispatch.retry.ErrorKind` value (``"rate_limit"``,
    ``"timeout"``, ``"connection"``, ``"server"``, ``"hard"``, ``"invalid"``) or
    ``"cancelled"`` for an attempt its caller gave up on."""

    llm: str
    decision_id: str
    latency_s: float
    error: str = ""
    kind: str = ""


@dataclass(frozen=True)
class Reply:
    """What an adapter read from a child's answer.

    Attributes:
        text: The answer's text (None when it has none to read).
        tokens: The ``(input, output)`` tokens the child reported; None when it reported none.
            The dispatcher checks them: counts that are not whole numbers >= 0 are treated as
            not reported, and estimated from the texts.
        calls_tools: The answer calls tools (an answer with tool calls may have no text).
    """

    text: str | None = None
    tokens: tuple[int, int] | None = None
    calls_tools: bool = False


class ReplyReader(Protocol):
    """Reads a child's answer for the dispatcher, whole or one stream chunk at a time.

    Called with the answer (or chunk) and the :class:`Reply` read so far: None for a whole
    answer and a stream's first chunk. Returns the reply including this value, so an adapter
    decides how its chunks combine (text deltas appended or cumulative text replaced; usage
    summed or the last report kept).
    """

    def __call__(self, value: Any, so_far: Reply | None, /) -> Reply: ...


def read_text(value: Any, so_far: Reply | None, /) -> Reply:
    """The default :class:`ReplyReader`: string answers (chunks appended), no reported usage.

    Example:
        >>> read_text(" world", read_text("hello", None))
        Reply(text='hello world', tokens=None, calls_tools=False)
    """
    text = value if isinstance(value, str) else None
    if so_far is not None and so_far.text is not None:
        text = so_far.text + (text or "")
    return Reply(text)


@dataclass
class DispatchResult:
    """The decision that answered, the answer, its usage and every attempt made on the way.

    ``value`` is the child's answer for :meth:`~mixllm_core.Dispatcher.call` / ``acall`` and
    None for streams.
    """

    decision: RoutingDecision
    value: Any
    latency_s: float
    attempts: list[Attempt] = field(default_factory=list)
    usage: CallUsage | None = None

    def to_dict(self) -> dict[str, Any]:
        """The routing metadata both integrations attach to an answer (JSON-friendly): the
        decision, ``latency_s``, ``cost``, ``input_tokens``, ``output_tokens``,
        ``usage_estimated`` and ``attempts`` (llm, decision_id, latency_s, error, kind)."""
        usage = self.usage
        return {
            **self.decision.to_dict(),
            "latency_s": self.latency_s,
            "cost": None if usage is None else usage.cost,
            "input_tokens": None if usage is None else usage.input_tokens,
            "output_tokens": None if usage is None else usage.output_tokens,
            "usage_estimated": None if usage is None else usage.estimated,
            "attempts": [asdict(a) for a in self.attempts],
        }
