"""Calling the chosen child with fallback: the part the LangChain and LlamaIndex adapters share.

`Dispatcher` routes a query, calls the chosen child through a callable the adapter supplies, and
when that child fails (an exception, or a timeout raised by the child) records the failure, puts a
child that keeps failing on a cooldown, and tries the next best candidate, up to ``max_attempts``.
Latency (in-flight count and service time) is tracked around every child call, sync or async.
Outcomes are appended to ``router.outcomes`` (and to the router's log when it has one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .decision import RoutingDecision
from .errors import ConfigError, EmptyPoolError, MixLLMError, UnknownLLMError

__all__ = ["AllCandidatesFailedError", "Attempt", "DispatchResult", "Dispatcher"]

T = TypeVar("T")


class AllCandidatesFailedError(MixLLMError, RuntimeError):
    """Every candidate tried for a query failed; ``attempts`` says how."""

    def __init__(self, attempts: list[Attempt]) -> None:
        self.attempts = attempts
        detail = "; ".join(f"{a.llm}: {a.error}" for a in attempts)
        super().__init__(f"All {len(attempts)} candidate LLM(s) failed: {detail}")


@dataclass(frozen=True)
class Attempt:
    """One try of one child."""

    llm: str
    decision_id: str
    latency_s: float
    error: str = ""


@dataclass
class DispatchResult:
    """The decision that answered, the answer, and every attempt made on the way."""

    decision: RoutingDecision
    value: Any
    latency_s: float
    attempts: list[Attempt] = field(default_factory=list)


class Dispatcher:
    """Route → call → fall back on failure, for one router and a set of named children.

    Args:
        router: A :class:`~mixllm_core.router.MixLLMRouter`.
        max_attempts: Children tried per query before giving up.
        failure_threshold: Consecutive failures that put a child on cooldown.
        cooldown_s: Seconds a child on cooldown is not chosen (unless it is pinned).
        clock: Monotonic clock (injectable).
    """

    def __init__(self, router: Any, *, max_attempts: int = 3, failure_threshold: int = 3,
                 cooldown_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigError(f"max_attempts must be an int >= 1, got {max_attempts!r}.")
        self.router = router
        self.max_attempts = max_attempts
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._failures: dict[str, int] = {}
        self._cooldown_until: dict[str, float] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ health
    def cooling_down(self) -> set[str]:
        now = self.clock()
        with self._lock:
            return {n for n, t in self._cooldown_until.items() if t > now}

    def _record(self, llm: str, ok: bool) -> None:
        with self._lock:
            if ok:
                self._failures[llm] = 0
                self._cooldown_until.pop(llm, None)
                return
            self._failures[llm] = self._failures.get(llm, 0) + 1
            if self._failures[llm] >= self.failure_threshold:
                self._cooldown_until[llm] = self.clock() + self.cooldown_s

    # ------------------------------------------------------------------ routing
    def next_decision(self, query: Any, *, tried: Sequence[str] = (), pin: str | None = None,
                      **route_kwargs: Any) -> RoutingDecision:
        """The decision for the next attempt: the pinned child, else the best not yet tried."""
        if pin is not None:
            if pin not in self.router.specs:
                raise UnknownLLMError(pin, self.router.specs)
            others = [n for n in self.router.specs if n != pin]
            return self.router.route(query, exclude=others, **route_kwargs)
        skip = set(tried) | self.cooling_down()
        if len(skip & set(self.router.specs)) >= len(self.router.specs):
            skip = set(tried)  # everything is cooling down: better a tired child than none
        if len(skip & set(self.router.specs)) >= len(self.router.specs):
            raise EmptyPoolError("Every LLM in the pool has been tried for this query.")
        return self.router.route(query, exclude=skip & set(self.router.specs), **route_kwargs)

    def _finish(self, decision: RoutingDecision, token: str, started: float,
                error: BaseException | None, attempts: list[Attempt]) -> float:
        self.router.tracker.finish(token, ok=error is None)
        latency = self.clock() - started
        self._record(decision.llm, error is None)
        attempts.append(Attempt(decision.llm, decision.decision_id, latency,
                                "" if error is None else f"{type(error).__name__}: {error}"))
        if error is not None:
            self.router.record_outcome(decision.decision_id, latency_s=latency, error=repr(error))
        return latency

    def _attempts_left(self, attempts: list[Attempt], pin: str | None) -> bool:
        return pin is None and len(attempts) < min(self.max_attempts, len(self.router.specs))

    def call(self, query: Any, invoke: Callable[[str, RoutingDecision], T], *,
             pin: str | None = None, **route_kwargs: Any) -> DispatchResult:
        """Route ``query`` and return ``invoke(child_name, decision)``, falling back on failure."""
        attempts: list[Attempt] = []
        while True:
            decision = self.next_decision(query, tried=[a.llm for a in attempts], pin=pin, **route_kwargs)
            token, started = self.router.tracker.start(decision.llm), self.clock()
            try:
                value = invoke(decision.llm, decision)
            except Exception as exc:  # noqa: BLE001 - any child failure triggers the fallback
                self._finish(decision, token, started, exc, attempts)
                if not self._attempts_left(attempts, pin):
                    raise AllCandidatesFailedError(attempts) from exc
                continue
            latency = self._finish(decision, token, started, None, attempts)
            return DispatchResult(decision, value, latency, attempts)

    async def acall(self, query: Any, invoke: Callable[[str, RoutingDecision], Awaitable[T]], *,
                    pin: str | None = None, **route_kwargs: Any) -> DispatchResult:
        """Async :meth:`call`."""
        attempts: list[Attempt] = []
        while True:
            decision = self.next_decision(query, tried=[a.llm for a in attempts], pin=pin, **route_kwargs)
            token, started = self.router.tracker.start(decision.llm), self.clock()
            try:
                value = await invoke(decision.llm, decision)
            except Exception as exc:  # noqa: BLE001
                self._finish(decision, token, started, exc, attempts)
                if not self._attempts_left(attempts, pin):
                    raise AllCandidatesFailedError(attempts) from exc
                continue
            latency = self._finish(decision, token, started, None, attempts)
            return DispatchResult(decision, value, latency, attempts)

    def stream(self, query: Any, open_stream: Callable[[str, RoutingDecision], Iterator[T]], *,
               pin: str | None = None, on_done: Callable[[DispatchResult], None] | None = None,
               **route_kwargs: Any) -> Iterator[tuple[RoutingDecision, T]]:
        """Yield ``(decision, chunk)``; falls back only while no chunk has been yielded.

        ``on_done`` receives the :class:`DispatchResult` (value None) once the stream ends.
        """
        attempts: list[Attempt] = []
        while True:
            decision = self.next_decision(query, tried=[a.llm for a in attempts], pin=pin, **route_kwargs)
            token, started = self.router.tracker.start(decision.llm), self.clock()
            yielded = False
            try:
                for chunk in open_stream(decision.llm, decision):
                    yielded = True
                    yield decision, chunk
            except Exception as exc:  # noqa: BLE001
                self._finish(decision, token, started, exc, attempts)
                if yielded or not self._attempts_left(attempts, pin):
                    raise AllCandidatesFailedError(attempts) from exc
                continue
            latency = self._finish(decision, token, started, None, attempts)
            if on_done is not None:
                on_done(DispatchResult(decision, None, latency, attempts))
            return

    async def astream(self, query: Any, open_stream: Callable[[str, RoutingDecision], AsyncIterator[T]], *,
                      pin: str | None = None, on_done: Callable[[DispatchResult], None] | None = None,
                      **route_kwargs: Any) -> AsyncIterator[tuple[RoutingDecision, T]]:
        """Async :meth:`stream`."""
        attempts: list[Attempt] = []
        while True:
            decision = self.next_decision(query, tried=[a.llm for a in attempts], pin=pin, **route_kwargs)
            token, started = self.router.tracker.start(decision.llm), self.clock()
            yielded = False
            try:
                async for chunk in open_stream(decision.llm, decision):
                    yielded = True
                    yield decision, chunk
            except Exception as exc:  # noqa: BLE001
                self._finish(decision, token, started, exc, attempts)
                if yielded or not self._attempts_left(attempts, pin):
                    raise AllCandidatesFailedError(attempts) from exc
                continue
            latency = self._finish(decision, token, started, None, attempts)
            if on_done is not None:
                on_done(DispatchResult(decision, None, latency, attempts))
            return
