"""`LatencyTracker`: in-flight requests and service time per LLM → expected waiting time.

The expected wait of LLM ``i`` is ``in_flight_i × service_i`` (../shared/DESIGN.md) where
``service_i`` is an exponentially weighted mean of observed service times. When the LLM's
concurrency limit is known it is ``max(0, in_flight_i − limit_i + 1) × service_i / limit_i``: a
request waits only once every slot is busy, and the service time then learns only from calls that
found a free slot (a queued call's latency is mostly waiting, counted by ``w`` already). Thread-safe;
the clock is injectable.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["CallOutcome", "LatencyTracker", "ManualClock"]


class ManualClock:
    """A clock that moves only when told to (simulations, replays and tests); thread-safe.

    Example:
        >>> clock = ManualClock()
        >>> clock.advance(1.5)
        >>> clock()
        1.5
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@dataclass(frozen=True)
class CallOutcome:
    """What one finished call took."""

    llm: str
    latency_s: float
    ok: bool


class LatencyTracker:
    """Tracks per-LLM load and speed.

    Args:
        clock: Monotonic seconds; injectable for tests and simulation.
        smoothing: Weight of the newest service time in the moving average (0, 1].
        default_service_s: Service time assumed before any call finished.

    Example:
        >>> t = LatencyTracker()
        >>> with t.track("a"):
        ...     pass
        >>> t.in_flight("a")
        0
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        smoothing: float = 0.2,
        default_service_s: float = 1.0,
    ) -> None:
        if not 0 < smoothing <= 1:
            raise ConfigError(f"smoothing must be in (0, 1], got {smoothing!r}.")
        self.clock = clock
        self.smoothing = smoothing
        self.default_service_s = default_service_s
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self._service: dict[str, float] = {}
        self._concurrency: dict[str, int] = {}
        self._started: dict[str, tuple[str, float, bool]] = {}

    def set_concurrency(self, llm: str, limit: int | None) -> None:
        with self._lock:
            if limit is None:
                self._concurrency.pop(llm, None)
            else:
                self._concurrency[llm] = int(limit)

    def start(self, llm: str) -> str:
        """Mark a call to ``llm`` as started; returns a token for :meth:`finish`."""
        token = uuid.uuid4().hex
        with self._lock:
            self._in_flight[llm] = self._in_flight.get(llm, 0) + 1
            slots = self._concurrency.get(llm)
            queued = slots is not None and self._in_flight[llm] > slots
            self._started[token] = (llm, self.clock(), queued)
        return token

    def finish(self, token: str, *, ok: bool = True) -> CallOutcome:
        """Mark the call ``token`` as finished; its duration updates the service time if ok."""
        now = self.clock()
        with self._lock:
            if token not in self._started:
                raise ConfigError(f"Unknown or already finished call token {token!r}.")
            llm, t0, queued = self._started.pop(token)
            self._in_flight[llm] = max(self._in_flight.get(llm, 1) - 1, 0)
            elapsed = max(now - t0, 0.0)
            if ok and not queued:  # a call that waited for a slot says little about service
                old = self._service.get(llm)
                self._service[llm] = (
                    elapsed
                    if old is None
                    else (self.smoothing * elapsed + (1 - self.smoothing) * old)
                )
        return CallOutcome(llm=llm, latency_s=elapsed, ok=ok)

    @contextmanager
    def track(self, llm: str) -> Iterator[None]:
        token = self.start(llm)
        ok = False
        try:
            yield
            ok = True
        finally:
            self.finish(token, ok=ok)

    def in_flight(self, llm: str) -> int:
        with self._lock:
            return self._in_flight.get(llm, 0)

    def service_time(self, llm: str) -> float:
        with self._lock:
            return self._service.get(llm, self.default_service_s)

    def observe_service(self, llm: str, seconds: float) -> None:
        """Seed or update the service time of ``llm`` without a tracked call."""
        with self._lock:
            old = self._service.get(llm)
            self._service[llm] = (
                seconds if old is None else (self.smoothing * seconds + (1 - self.smoothing) * old)
            )

    def known_service(self, llm: str) -> float | None:
        """The service time learned for ``llm``, or None before any (no default)."""
        with self._lock:
            return self._service.get(llm)

    def concurrency(self, llm: str) -> int | None:
        """The concurrency limit of ``llm`` (None: unknown)."""
        with self._lock:
            return self._concurrency.get(llm)

    def expected_wait(self, llm: str) -> float:
        """Seconds a new request to ``llm`` is expected to wait before it is served (from
        :meth:`in_flight`, :meth:`service_time` and :meth:`concurrency`)."""
        busy, service, slots = self.in_flight(llm), self.service_time(llm), self.concurrency(llm)
        if slots is None:
            return busy * service
        queued = max(busy - slots + 1, 0)
        return queued * service / slots
