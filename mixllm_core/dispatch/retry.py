"""Which child failures are worth retrying, how long to wait, and how long a child cools down.

:func:`classify_error` sorts a child's exception into an :class:`ErrorKind` by what provider
SDKs expose: an HTTP status (``status_code``, ``status``, ``code`` or ``response.status_code``),
the exception's class name (``RateLimitError``, ``APITimeoutError``, ``APIConnectionError``,
``InternalServerError``...), the builtin class (``TimeoutError``, ``ConnectionError``) and, for
rate limits, the message. Causes (``__cause__``) are read too, for SDKs that wrap an HTTP error.
:func:`retry_after_s` reads the wait a provider asked for (a ``retry_after`` attribute, or the
``Retry-After`` / ``retry-after-ms`` headers of ``exc.response`` or ``exc.headers``).

:class:`RetryPolicy` holds the knobs the :class:`~mixllm_core.Dispatcher` applies: bounded retries
of the same child with jittered exponential backoff for the retryable kinds, and a cooldown per
kind (a rate limit cools the child down at once for its ``Retry-After``; other failures after
``failure_threshold`` in a row, hard errors for longer).
"""

from __future__ import annotations

import email.utils
import math
import random
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum

from ..errors import ConfigError, check_non_negative

__all__ = ["RETRYABLE", "ErrorKind", "RetryPolicy", "classify_error", "retry_after_s"]


class ErrorKind(str, Enum):
    """What kind of failure an attempt ended in (the value is what metadata and logs show)."""

    RATE_LIMIT = "rate_limit"  #: HTTP 429, a RateLimitError, "rate limit" in the message
    TIMEOUT = "timeout"  #: no answer in time (the child's own timeout or the dispatcher's)
    CONNECTION = "connection"  #: the request never reached the provider or the link dropped
    SERVER = "server"  #: HTTP 5xx, an overloaded or unavailable service
    HARD = "hard"  #: anything else (bad request, auth, a bug): retrying would not help
    INVALID = "invalid"  #: the child answered, and the validator rejected the answer


#: The kinds retried on the same child by default.
RETRYABLE = frozenset(
    {ErrorKind.RATE_LIMIT, ErrorKind.TIMEOUT, ErrorKind.CONNECTION, ErrorKind.SERVER}
)

_RATE_NAMES = re.compile(r"ratelimit|rate_limit|toomanyrequests|resourceexhausted|throttl", re.I)
_RATE_TEXT = re.compile(
    r"rate[ _-]?limit|too many requests|quota exceeded|throttl|(?:error|status)(?: code)?:? 429\b",
    re.I,
)
_TIMEOUT_NAMES = re.compile(r"timeout|timedout|deadlineexceeded", re.I)
_CONNECTION_NAMES = re.compile(r"connect|network|remoteprotocol|unreachable", re.I)
_SERVER_NAMES = re.compile(
    r"internalserver|serviceunavailable|overloaded|badgateway|servererror|unavailable", re.I
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from (explicit causes first), without loops."""
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen and len(seen) < 8:
        seen.add(id(node))
        yield node
        if node.__cause__ is not None:
            node = node.__cause__
        else:
            node = None if node.__suppress_context__ else node.__context__


def _status(exc: BaseException) -> int | None:
    """The HTTP status an SDK exception carries, if any."""
    candidates = [getattr(exc, name, None) for name in ("status_code", "status", "http_status")]
    response = getattr(exc, "response", None)
    if response is not None:
        candidates += [getattr(response, "status_code", None), getattr(response, "status", None)]
    candidates.append(getattr(exc, "code", None))  # urllib's HTTPError, grpc-style codes
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    return None


def _kind_of(exc: BaseException) -> ErrorKind | None:
    """The kind one exception of the chain says it is; None when it says nothing."""
    name = type(exc).__name__
    status = _status(exc)
    if status == 429 or _RATE_NAMES.search(name):
        return ErrorKind.RATE_LIMIT
    if status in (408,) or isinstance(exc, TimeoutError) or _TIMEOUT_NAMES.search(name):
        return ErrorKind.TIMEOUT
    if isinstance(exc, ConnectionError) or _CONNECTION_NAMES.search(name):
        return ErrorKind.CONNECTION
    if (status is not None and status >= 500) or _SERVER_NAMES.search(name):
        return ErrorKind.SERVER
    if status is not None:  # a 4xx other than 408 and 429: the request itself is wrong
        return ErrorKind.HARD
    return None


def classify_error(exc: BaseException) -> ErrorKind:
    """The :class:`ErrorKind` of a child's exception.

    Example:
        >>> classify_error(TimeoutError("read timed out")).value
        'timeout'
        >>> class RateLimitError(Exception):
        ...     status_code = 429
        >>> classify_error(RateLimitError("slow down")).value
        'rate_limit'
        >>> classify_error(RuntimeError("Rate limit reached for gpt-4o")).value
        'rate_limit'
        >>> classify_error(ValueError("context length exceeded")).value
        'hard'
    """
    for node in _chain(exc):
        kind = _kind_of(node)
        if kind is not None:
            return kind
    if _RATE_TEXT.search(str(exc)):
        return ErrorKind.RATE_LIMIT
    return ErrorKind.HARD


def _seconds(value: object, *, scale: float = 1.0, now: float | None = None) -> float | None:
    """A Retry-After value in seconds: a number, a numeric string, or an HTTP date."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        seconds = float(value) * scale
    elif isinstance(value, (str, bytes)):
        text = value.decode() if isinstance(value, bytes) else value
        try:
            seconds = float(text.strip()) * scale
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                return None
            seconds = when.timestamp() - (time.time() if now is None else now)
    else:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _header(headers: object, name: str) -> object:
    if isinstance(headers, Mapping) or hasattr(headers, "get"):
        for key in (name, name.title(), name.upper()):
            value = headers.get(key)
            if value is not None:
                return value
    return None


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds the provider asked to wait before the next call, or None when it did not say.

    Read from a ``retry_after`` attribute (seconds), else the ``retry-after-ms`` or
    ``retry-after`` header of ``exc.response`` or ``exc.headers`` (seconds or an HTTP date).

    Example:
        >>> class Response:
        ...     headers = {"retry-after": "7"}
        >>> class RateLimitError(Exception):
        ...     response = Response()
        >>> retry_after_s(RateLimitError("429"))
        7.0
        >>> retry_after_s(RuntimeError("down")) is None
        True
    """
    for node in _chain(exc):
        seconds = _seconds(getattr(node, "retry_after", None))
        if seconds is not None:
            return seconds
        sources = [getattr(getattr(node, "response", None), "headers", None)]
        sources.append(getattr(node, "headers", None))
        for headers in sources:
            if headers is None:
                continue
            seconds = _seconds(_header(headers, "retry-after-ms"), scale=0.001)
            if seconds is None:
                seconds = _seconds(_header(headers, "retry-after"))
            if seconds is not None:
                return seconds
    return None


def _check_count(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}, got {value!r}.")


@dataclass(frozen=True)
class RetryPolicy:
    """How the dispatcher retries a failing child and cools it down (validated on construction).

    Args:
        retries_per_child: Retries of the same child after a failure of a ``retry_on`` kind,
            before falling back to the next child (0: fall back at once).
        backoff_s: Wait before the first retry; doubles with each retry (jittered: a random
            point in the upper half of the doubled wait).
        max_backoff_s: Longest backoff between two retries.
        max_wait_s: Longest the dispatcher waits to retry the same child, a provider's
            ``Retry-After`` included. A longer ``Retry-After`` is not waited for: the child cools
            down for it and the call falls back (or fails, when nothing else is left).
        retry_on: The :class:`ErrorKind` values retried on the same child.
        failure_threshold: Consecutive failures that put a child on cooldown, when they are
            also ``failure_rate`` of its last 10 attempts (a rate limit does at once; so does
            any failure of the one probe sent when a cooldown ends).
        failure_rate: The share of a child's last 10 attempts that must have failed too: a
            child that fails now and then keeps its traffic (retries and fallback absorb it),
            one that stopped working cools down.
        cooldown_s: Cooldown after timeouts, connection and server errors, rejected answers.
        rate_limit_cooldown_s: Cooldown after a rate limit that named no ``Retry-After``.
        hard_cooldown_s: Cooldown after repeated hard errors (auth, bad requests); None:
            ``4 × cooldown_s``.
        max_cooldown_s: Longest cooldown, whatever a ``Retry-After`` asks for.

    Example:
        >>> policy = RetryPolicy(retries_per_child=2, backoff_s=0.1)
        >>> [round(policy.backoff(n, random.Random(0)), 3) for n in range(3)]
        [0.092, 0.184, 0.369]
        >>> policy.cooldown(ErrorKind.RATE_LIMIT, retry_after=12.0)
        12.0
        >>> RetryPolicy(backoff_s=-1)
        Traceback (most recent call last):
        ...
        mixllm_core.errors.ConfigError: backoff_s must be a finite number >= 0, got -1.
    """

    retries_per_child: int = 1
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    max_wait_s: float = 10.0
    retry_on: frozenset[ErrorKind] = field(default=RETRYABLE)
    failure_threshold: int = 3
    failure_rate: float = 0.5
    cooldown_s: float = 30.0
    rate_limit_cooldown_s: float = 5.0
    hard_cooldown_s: float | None = None
    max_cooldown_s: float = 300.0

    def __post_init__(self) -> None:
        _check_count("retries_per_child", self.retries_per_child, 0)
        _check_count("failure_threshold", self.failure_threshold, 1)
        for name in (
            "backoff_s",
            "max_backoff_s",
            "max_wait_s",
            "cooldown_s",
            "rate_limit_cooldown_s",
            "max_cooldown_s",
        ):
            check_non_negative(name, getattr(self, name))
        rate = self.failure_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ConfigError(f"failure_rate must be a number in [0, 1], got {rate!r}.")
        if self.hard_cooldown_s is not None:
            check_non_negative("hard_cooldown_s", self.hard_cooldown_s)
        if self.max_backoff_s < self.backoff_s:
            raise ConfigError(
                f"max_backoff_s must be >= backoff_s ({self.backoff_s!r}), got "
                f"{self.max_backoff_s!r}."
            )
        kinds = set(self.retry_on) if isinstance(self.retry_on, (set, frozenset)) else None
        if kinds is None or not all(isinstance(k, ErrorKind) for k in kinds):
            raise ConfigError(
                f"retry_on must be a set of ErrorKind values ({[k.value for k in ErrorKind]}), "
                f"got {self.retry_on!r}."
            )
        object.__setattr__(self, "retry_on", frozenset(kinds))

    def retries(self, kind: ErrorKind) -> bool:
        """Whether a failure of ``kind`` is retried on the same child."""
        return kind in self.retry_on and self.retries_per_child > 0

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The jittered wait before retry number ``retry`` (0-based) of the same child."""
        cap = min(self.max_backoff_s, self.backoff_s * 2.0**retry)
        return cap / 2 + rng.random() * cap / 2

    def cooldown(self, kind: ErrorKind, retry_after: float | None = None) -> float:
        """Seconds a child cools down for when a failure of ``kind`` puts it on cooldown."""
        if kind is ErrorKind.RATE_LIMIT:
            wanted = self.rate_limit_cooldown_s if retry_after is None else retry_after
        elif kind is ErrorKind.HARD:
            wanted = 4 * self.cooldown_s if self.hard_cooldown_s is None else self.hard_cooldown_s
        else:
            wanted = self.cooldown_s
        return float(min(wanted, self.max_cooldown_s))
