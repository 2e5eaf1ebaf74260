"""`SharedState`: the settings of the fleet-wide live state and the objects that use it."""

from __future__ import annotations

import itertools
import math
import os
import socket
import time
import uuid
from collections.abc import Callable

from ..errors import ConfigError
from .budget import SharedBudget
from .cooldowns import SharedCooldowns
from .latency import SharedLatencyTracker
from .link import RedisLink

__all__ = ["SharedState"]


def _positive(name: str, value: object, *, zero: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero)
    ):
        allowed = ">= 0" if zero else "> 0"
        raise ConfigError(f"SharedState {name} must be a finite number {allowed}, got {value!r}.")
    return float(value)


class SharedState:
    """Live state shared by every replica of a router through Redis (or Valkey): in-flight
    calls and service times per LLM, spend per budget period, cooldowns.

    Every Redis call has a strict timeout and fails open to local state (see
    :class:`~mixllm_core.shared_state.link.RedisLink`): Redis being down never fails a call.

    Args:
        url: ``redis://host:6379/0`` (``rediss://`` for TLS).
        prefix: Namespace of the keys; give each router pool (and each budget) its own.
        timeout_s: Connect and read timeout of each Redis call.
        refresh_s: How stale the fleet readings a route uses may be (0: read on every route).
        retry_after_s: After a failed call, local state only for this long.
        replica_ttl_s: A replica not heard from for this long is dropped (its in-flight calls
            with it), e.g. after ``kill -9``.
        hold_ttl_s: A budget hold whose outcome never comes is released after this long.

    Example:
        >>> state = SharedState("redis://127.0.0.1:6379/0", prefix="support-bot")
        >>> state.prefix, state.timeout_s
        ('support-bot', 0.05)
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "mixllm",
        timeout_s: float = 0.05,
        refresh_s: float = 0.05,
        retry_after_s: float = 1.0,
        replica_ttl_s: float = 30.0,
        hold_ttl_s: float = 300.0,
    ) -> None:
        if not isinstance(url, str):
            raise ConfigError(f"shared_state must be a redis:// URL, got {url!r}.")
        if not isinstance(prefix, str) or not prefix or any(c.isspace() for c in prefix):
            raise ConfigError(f"SharedState prefix must be a non-empty word, got {prefix!r}.")
        self.prefix = prefix
        self.timeout_s = _positive("timeout_s", timeout_s)
        self.refresh_s = _positive("refresh_s", refresh_s, zero=True)
        self.retry_after_s = _positive("retry_after_s", retry_after_s)
        self.replica_ttl_s = _positive("replica_ttl_s", replica_ttl_s)
        self.hold_ttl_s = _positive("hold_ttl_s", hold_ttl_s)
        self.link = RedisLink(url, timeout_s=self.timeout_s, retry_after_s=self.retry_after_s)
        self.replica = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._ids = itertools.count()

    @classmethod
    def of(cls, value: SharedState | str | None) -> SharedState | None:
        """``value`` as a :class:`SharedState` (a URL gets the default settings)."""
        return value if value is None or isinstance(value, SharedState) else cls(value)

    def _id(self) -> str:
        return f"{self.replica}:{next(self._ids)}"

    @property
    def up(self) -> bool:
        """Whether the last Redis call succeeded."""
        return self.link.up

    def tracker(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        smoothing: float = 0.2,
        default_service_s: float = 1.0,
    ) -> SharedLatencyTracker:
        """A latency tracker that sees the in-flight calls of every replica."""
        return SharedLatencyTracker(
            self.link,
            self.prefix,
            self._id(),
            refresh_s=self.refresh_s,
            replica_ttl_s=self.replica_ttl_s,
            clock=clock,
            smoothing=smoothing,
            default_service_s=default_service_s,
        )

    def budget(
        self,
        budget: float | None,
        period_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> SharedBudget:
        """One budget of ``budget`` USD per ``period_s`` for every replica."""
        return SharedBudget(
            self.link,
            self.prefix,
            self._id(),
            budget,
            period_s,
            refresh_s=self.refresh_s,
            hold_ttl_s=self.hold_ttl_s,
            clock=clock,
        )

    def cooldowns(self) -> SharedCooldowns:
        """The cooldown board of every replica's dispatchers."""
        return SharedCooldowns(self.link, self.prefix, refresh_s=self.refresh_s)
