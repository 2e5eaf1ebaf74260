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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

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
        # readings for a tuple of names, valid while ``_version`` (bumped by every change) holds
        self._version = 0
        self._readings: dict[tuple[str, ...], tuple[object, np.ndarray, np.ndarray]] = {}
        self._custom_readers = _overrides_readers(type(self))

    def set_concurrency(self, llm: str, limit: int | None) -> None:
        with self._lock:
            self._version += 1
            if limit is None:
                self._concurrency.pop(llm, None)
            else:
                self._concurrency[llm] = int(limit)

    def start(self, llm: str) -> str:
        """Mark a call to ``llm`` as started; returns a token for :meth:`finish`."""
        token = uuid.uuid4().hex
        with self._lock:
            self._version += 1
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
            self._version += 1
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
            self._version += 1
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

    def expected_waits(self, llms: Sequence[str]) -> np.ndarray:
        """:meth:`expected_wait` of each of ``llms``, as one read-only array (one lock, and no
        work at all while nothing changed since the last reading of the same names).

        Example:
            >>> t = LatencyTracker()
            >>> t.observe_service("a", 2.0)
            >>> _ = t.start("a")
            >>> t.expected_waits(["a", "b"]).tolist()
            [2.0, 0.0]
        """
        return self._readings_of(llms)[0]

    def service_times(self, llms: Sequence[str]) -> np.ndarray:
        """:meth:`service_time` of each of ``llms``, as one read-only array.

        Example:
            >>> LatencyTracker(default_service_s=0.5).service_times(["a"]).tolist()
            [0.5]
        """
        return self._readings_of(llms)[1]

    def _readings_of(self, llms: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if self._custom_readers:  # e.g. readings that cover a fleet: ask per LLM
            wait = np.array([self.expected_wait(n) for n in llms], dtype=float)
            service = np.array([self.service_time(n) for n in llms], dtype=float)
            return wait, service
        key = tuple(llms)
        with self._lock:
            cached = self._readings.get(key)
            version = (self._version, self.default_service_s)
            if cached is not None and cached[0] == version:
                return cached[1], cached[2]
            busy = [self._in_flight.get(n, 0) for n in key]
            service_list = [self._service.get(n, self.default_service_s) for n in key]
            slots = [self._concurrency.get(n) for n in key]
        # the same arithmetic, in the same order, as ``expected_wait``
        waits = [
            b * s if k is None else max(b - k + 1, 0) * s / k
            for b, s, k in zip(busy, service_list, slots)
        ]
        wait = np.array(waits, dtype=float)
        service = np.array(service_list, dtype=float)
        wait.flags.writeable = service.flags.writeable = False
        with self._lock:
            if len(self._readings) > 64:  # pools come and go: keep the cache small
                self._readings.clear()
            self._readings[key] = (version, wait, service)
        return wait, service


def _overrides_readers(cls: type[LatencyTracker]) -> bool:
    """Whether ``cls`` changes how a reading is made (then every reading goes through it)."""
    return any(
        getattr(cls, name) is not getattr(LatencyTracker, name)
        for name in ("expected_wait", "in_flight", "service_time", "concurrency")
    )
