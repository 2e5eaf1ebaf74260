"""The exception tree of mixllm.

Every error the package raises on purpose derives from :class:`MixLLMError` and from the builtin
exception a caller would naturally catch, so ``except ValueError`` keeps working::

    MixLLMError
    ├── ConfigError          (ValueError)    a parameter outside what is allowed
    ├── DataFormatError      (ValueError)    routing data with missing / mismatched / NaN columns
    ├── UnknownLLMError      (KeyError)      an LLM name that is not in the pool
    ├── EmptyPoolError       (ValueError)    no LLM left to route to (pool empty or all filtered)
    ├── NotFittedError       (ValueError, AttributeError)  used before ``fit``
    ├── FeedbackError        (ValueError)    feedback for an unknown or already-used decision
    ├── CorruptStateError    (ValueError)    a saved router that fails its integrity checks
    ├── MissingDependencyError (ImportError) an optional extra is not installed
    ├── LogUnavailableError  (ConnectionError)  the routing log's database does not answer
    ├── ChildCallError       (RuntimeError)  a child's failure, its message redacted
    └── AllCandidatesFailedError (RuntimeError)  no child answered a routed call
        └── AllCoolingDownError                  every child left is cooling down: none called

and one warning tree under :class:`MixLLMWarning` (a ``UserWarning``)::

    MixLLMWarning
    └── UnpricedLLMWarning   a cold-start pool with LLMs of unknown price, routed as if free
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol


class _FailedAttempt(Protocol):
    """What an error message reads of an attempt (:class:`mixllm_core.dispatch.Attempt`)."""

    @property
    def llm(self) -> str: ...

    @property
    def error(self) -> str: ...


__all__ = [
    "AllCandidatesFailedError",
    "AllCoolingDownError",
    "ChildCallError",
    "ConfigError",
    "CorruptStateError",
    "DataFormatError",
    "EmptyPoolError",
    "FeedbackError",
    "LogUnavailableError",
    "MissingDependencyError",
    "MixLLMError",
    "MixLLMWarning",
    "NotFittedError",
    "UnknownLLMError",
    "UnpricedLLMWarning",
]


class MixLLMError(Exception):
    """Base class of every error raised by mixllm on purpose."""


class MixLLMWarning(UserWarning):
    """Base class of every warning mixllm issues on purpose."""


class UnpricedLLMWarning(MixLLMWarning):
    """A cold-start router over LLMs whose price nobody gave: they are routed as if free.

    With no price at all every candidate costs 0, so until feedback arrives the choice is a
    coin flip; with some prices missing, the unpriced LLMs look cheapest. Pass ``prices=``,
    name the LLMs ``"provider:model"`` so their list prices are looked up, or give a trained
    router. An LLM that really is free is priced ``(0, 0)``, which silences the warning.
    """


class ConfigError(MixLLMError, ValueError):
    """A parameter is outside the values that are allowed."""


class DataFormatError(MixLLMError, ValueError):
    """Routing data does not have the expected columns or values."""


class UnknownLLMError(MixLLMError, KeyError):
    """An LLM name that is not in the pool."""

    def __init__(self, name: object, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"Unknown LLM {name!r}. LLMs in the pool are {self.known}.")

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class EmptyPoolError(MixLLMError, ValueError):
    """There is no candidate LLM to route to."""


class NotFittedError(MixLLMError, ValueError, AttributeError):
    """The object is used before ``fit`` was called."""


class FeedbackError(MixLLMError, ValueError):
    """Feedback that cannot be applied (unknown or already-used decision, bad score)."""


class CorruptStateError(MixLLMError, ValueError):
    """A saved router is incomplete, modified or otherwise unreadable."""


class MissingDependencyError(MixLLMError, ImportError):
    """An optional dependency is missing; the message names the pip command that fixes it."""


class LogUnavailableError(MixLLMError, ConnectionError):
    """The database of a routing log does not answer; the message names it (no password) and
    says what to do. Nothing the call would have written was recorded: try it again later."""


class ChildCallError(MixLLMError, RuntimeError):
    """A child's failure, with the child's traceback and its message redacted.

    Attributes:
        exc_type: The class of the exception the child raised; None when the child raised
            nothing and its answer was rejected by the validator.
    """

    def __init__(self, message: str, exc_type: type[BaseException] | None) -> None:
        super().__init__(message)
        self.exc_type = exc_type


class AllCandidatesFailedError(MixLLMError, RuntimeError):
    """Every candidate tried for a query failed; ``attempts`` says how.

    Its ``__cause__`` is a :class:`ChildCallError` for the last failure: the child's traceback
    with its message redacted (the child's own exception, which may quote an API key, is not
    chained).
    """

    def __init__(self, attempts: Sequence[_FailedAttempt], message: str | None = None) -> None:
        self.attempts = list(attempts)
        if message is None:
            detail = "; ".join(f"{a.llm}: {a.error}" for a in self.attempts)
            message = f"All {len(self.attempts)} candidate LLM(s) failed: {detail}"
        super().__init__(message)


class AllCoolingDownError(AllCandidatesFailedError):
    """Every child left for a query is cooling down after failures, so none was called.

    Raised at once, without calling a child, while every candidate cools down (after a call's
    own failed attempts, which ``attempts`` then lists). ``cooling`` gives each candidate's
    seconds of cooldown left (None: on probation, its one probe taken by another call) and
    ``retry_after_s`` the shortest (None when only probes are pending).
    """

    def __init__(
        self, attempts: Sequence[_FailedAttempt], cooling: Mapping[str, float | None]
    ) -> None:
        self.cooling = dict(cooling)
        waits = [s for s in self.cooling.values() if s is not None]
        self.retry_after_s: float | None = min(waits) if waits else None
        shown = ", ".join(
            f"{n}: {'on probation, its probe taken' if s is None else f'{s:.1f} s left'}"
            for n, s in sorted(self.cooling.items())
        )
        tried = "; ".join(f"{a.llm}: {a.error}" for a in attempts)
        message = f"Every candidate LLM left is cooling down after failures ({shown})"
        message += f", after {len(attempts)} failed attempt(s): {tried}." if attempts else "."
        if self.retry_after_s is not None:
            message += f" The first cooldown ends in {self.retry_after_s:.1f} s."
        super().__init__(attempts, message)


def check_choice(name: str, value: object, allowed: Iterable[object]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"Invalid {name} {value!r}. Allowed values are {allowed}.")


def check_non_negative(name: str, value: float) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite number >= 0."""
    if not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}.")


#: Query parameters of a URL whose values are secrets (matched case-insensitively).
_SECRET_PARAM = re.compile(
    r"(?i)((?:[a-z_]*pass(?:word|wd)?|pwd|[a-z_]*secret|[a-z_]*token)=)[^&#]*"
)


def hide_url_secrets(url: str) -> str:
    """``url`` with its password replaced by ``***`` (also for a URL that does not parse), for
    messages and log lines.

    The user-info password may hold ``/`` or ``@`` (everything up to the last ``@`` goes), and
    query parameters such as ``password=``, ``sslpassword=`` or ``token=`` are hidden too.

    Example:
        >>> hide_url_secrets("postgresql://bob:p/s@s@db/prod?password=x&sslmode=require")
        'postgresql://bob:***@db/prod?password=***&sslmode=require'
    """
    hidden = re.sub(r"(//[^:/@?#]*):.*@", r"\1:***@", url)
    return _SECRET_PARAM.sub(r"\1***", hidden)
