"""`RedisLink`: every Redis call of the shared state, under a strict timeout, failing open.

A call that fails (timeout, refused connection, a Redis error) returns the caller's local
fallback instead, and the link stays *down* for ``retry_after_s``: meanwhile no call touches the
network, and after it one call at a time tries Redis again, so an outage costs at most one
timeout per ``retry_after_s``, not one per call. The first failure of an outage is logged
(``logging.warning``, logger ``mixllm_core.shared_state``), not every call; the first success
after it is logged (``logging.info``) and runs the ``on_recover`` callbacks (the shared objects
publish their local state again, see :class:`SharedState`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..errors import ConfigError, hide_url_secrets

__all__ = ["ReplicaName", "RedisLink", "redact_url"]

logger = logging.getLogger("mixllm_core.shared_state")

T = TypeVar("T")


def redact_url(url: str) -> str:
    """``url`` without its user and password, and with secret query parameters hidden (for log
    lines and errors; see :func:`~mixllm_core.errors.hide_url_secrets`).

    Example:
        >>> redact_url("redis://user:secret@cache:6379/0")
        'redis://cache:6379/0'
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
    except ValueError:  # a port that is not a number: hide what can be hidden
        return hide_url_secrets(url)
    return hide_url_secrets(parts._replace(netloc=netloc).geturl())


class ReplicaName:
    """A replica's id in the fleet: ``base`` in the process that made it, ``base:pid`` in a
    process forked from it (each worker of a pre-forking server is a replica of its own).

    Example:
        >>> str(ReplicaName("web-1:4242:0"))
        'web-1:4242:0'
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self.pid = os.getpid()

    @property
    def forked(self) -> bool:
        """Whether this process is not the one that made the name."""
        return os.getpid() != self.pid

    def __str__(self) -> str:
        return f"{self.base}:{os.getpid()}" if self.forked else self.base


def _client(url: str, timeout_s: float) -> Any:
    """A redis-py client with strict timeouts and no retries of its own."""
    try:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ConfigError(
            'shared_state needs redis-py: pip install "mixllm[shared]" (or pip install redis).'
        ) from exc
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"shared_state must be a redis://, rediss:// or unix:// URL, got {redact_url(url)!r}."
        )
    # one immediate retry on a dropped connection (a server restart), none after a timeout
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        health_check_interval=0,
        client_name="mixllm",
    )


class RedisLink:
    """A Redis client whose calls fail open (see the module docstring).

    Args:
        url: ``redis://host:port/db`` (``rediss://`` for TLS, ``unix://`` for a socket).
        timeout_s: Connect and read timeout of every call.
        retry_after_s: After a failure, calls return their fallback for this long.
        clock: Monotonic seconds (injectable).

    Example:
        >>> link = RedisLink("redis://127.0.0.1:9/0", timeout_s=0.05)  # nothing listens there
        >>> import logging; logging.disable(logging.WARNING)
        >>> link.call(lambda r: r.ping(), fallback="local"), link.up
        ('local', False)
        >>> logging.disable(logging.NOTSET)
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 0.05,
        retry_after_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.clock = clock
        self.client = _client(url, timeout_s)
        self.up = True  # as far as we know
        self.calls = 0  # calls that went to Redis (round trips; for metrics)
        self.failures = 0  # calls that failed over (for tests and metrics)
        self._down_since = 0.0
        self._retry_at = 0.0
        self._lock = threading.Lock()
        self._probe = threading.Lock()  # held by the one call that tries a down Redis again
        self._on_recover: list[Callable[[], None]] = []

    def on_recover(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (through this link) after the first success that ends an outage."""
        self._on_recover.append(callback)

    def call(self, fn: Callable[[Any], T], fallback: T) -> T:
        """``fn(client)``, or ``fallback`` when Redis is down or the call fails or times out."""
        if self.up:
            return self._call(fn, fallback)
        # down: one call at a time tries Redis again, once retry_after_s has passed
        if self.clock() < self._retry_at or not self._probe.acquire(blocking=False):
            return fallback
        try:
            return self._call(fn, fallback)
        finally:
            self._probe.release()

    def _call(self, fn: Callable[[Any], T], fallback: T) -> T:
        self.calls += 1
        try:
            value = fn(self.client)
        except Exception as exc:  # noqa: BLE001 - redis, socket and script errors alike
            self._failed(exc)
            return fallback
        if not self.up:
            self._recovered()
        return value

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self.failures += 1
            now = self.clock()
            self._retry_at = now + self.retry_after_s
            if not self.up:
                return
            self.up = False
            self._down_since = now
        logger.warning(
            "Shared state at %s is unreachable (%s: %s); using local state, retrying every %gs.",
            redact_url(self.url),
            type(exc).__name__,
            exc,
            self.retry_after_s,
        )

    def _recovered(self) -> None:
        with self._lock:
            if self.up:
                return
            self.up = True
            down = self.clock() - self._down_since
        logger.info(
            "Shared state at %s is back after %.1fs; publishing local state.",
            redact_url(self.url),
            down,
        )
        for callback in self._on_recover:
            callback()
