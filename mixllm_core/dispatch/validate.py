"""Answer validators: a child that answers junk has failed, and the next child is tried.

A validator is any callable that takes the :class:`~mixllm_core.dispatch.results.Reply` read from a
child's answer (its text, whether it calls tools, its reported tokens) and returns None or True
when the answer is acceptable, or a reason (a string, or False) when it is not. The
:class:`~mixllm_core.Dispatcher` records a rejected answer as a failure of that child (with the
reason, and the tokens the answer used) and falls back; a stream is checked when it ends.

Example:
    >>> from mixllm_core.dispatch.results import Reply
    >>> non_empty(Reply(" ")), non_empty(Reply("Paris."))
    ('empty answer', None)
    >>> both = all_of(non_empty, lambda r: "a refusal" if r.text.startswith("Sorry") else None)
    >>> both(Reply("Sorry, I cannot help."))
    'a refusal'
"""

from __future__ import annotations

from typing import Protocol

from .redact import describe_error
from .results import Reply

__all__ = ["AnswerValidator", "all_of", "non_empty", "rejection"]


class AnswerValidator(Protocol):
    """Judges a child's answer: None or True accepts it; a reason (str) or False rejects it."""

    def __call__(self, reply: Reply, /) -> str | bool | None: ...


def non_empty(reply: Reply) -> str | None:
    """Rejects an answer with no text (or only whitespace) that calls no tool."""
    if reply.calls_tools or (reply.text or "").strip():
        return None
    return "empty answer"


def all_of(*validators: AnswerValidator) -> AnswerValidator:
    """A validator that applies ``validators`` in order and returns the first rejection."""

    def check(reply: Reply) -> str | None:
        for validator in validators:
            reason = rejection(validator, reply)
            if reason is not None:
                return reason
        return None

    return check


def rejection(validator: AnswerValidator, reply: Reply) -> str | None:
    """Why ``validator`` rejects ``reply``, or None when it accepts it.

    A validator that raises rejects the answer, with its error as the reason.
    """
    try:
        verdict = validator(reply)
    except Exception as exc:  # noqa: BLE001 - a broken check must not pass a bad answer
        return f"the validator raised {describe_error(exc)}"
    if verdict is None or verdict is True:
        return None
    if isinstance(verdict, str) and verdict:
        return verdict
    return "rejected by the validator"
