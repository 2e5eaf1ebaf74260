"""`ChildHealth`: which children are cooling down after failures, and who may probe them.

A child is healthy, cooling down, or on probation. A failure puts it on cooldown as the
:class:`~mixllm_core.dispatch.retry.RetryPolicy` says (a rate limit at once, other failures after
``failure_threshold`` in a row that are also ``failure_rate`` of its last 10 attempts, so that a
child failing now and then is not cut off). While it cools down it is not routed to. When the cooldown ends
the child is on probation: one call at a time may probe it. The probe's success makes it healthy
again; any failure of the probe puts it straight back on cooldown. So during a full outage each
user call makes at most one child call, and none at all while every child cools down.

Probes are reserved while a call is routed (:meth:`ChildHealth.blocked` with an ``owner``) so
that concurrent calls, or the calls of one micro-batch, do not all probe the same child; the
owner keeps the reservation of the child it chose (:meth:`ChildHealth.begin`) and gives every
reservation back when its attempt ends (:meth:`ChildHealth.release`).

A call that already failed and finds every child it has left cooling down may still try one of
them (:meth:`ChildHealth.last_resort`: cooling down after transient failures, not a rate limit
or hard errors) rather than fail: the cooldown of a child that fails now and then is not the
caller's loss. A call makes at most one such try, or one probe. Thread-safe.

With a :class:`CooldownBoard` (a router built with ``shared_state=``), the cooldowns a health
starts are published to every replica, and those the others started are cooled down here too
(each replica then probes the child on its own).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from .retry import ErrorKind, RetryPolicy

__all__ = ["ChildHealth", "CooldownBoard"]

WINDOW = 10  #: attempts per child whose failure rate is kept
_TRANSIENT = frozenset(
    {ErrorKind.TIMEOUT, ErrorKind.CONNECTION, ErrorKind.SERVER, ErrorKind.INVALID}
)


@dataclass
class _State:
    failures: int = 0  # consecutive
    until: float = 0.0  # end of the current cooldown
    kind: ErrorKind | None = None  # of the failure that started it
    probation: bool = False  # a cooldown started and no success since
    owner: object | None = None  # the call holding the probe (reserved or in flight)
    recent: deque[bool] = field(default_factory=lambda: deque(maxlen=WINDOW))  # True: failed


class CooldownBoard(Protocol):
    """Cooldowns shared by several :class:`ChildHealth` (the fleet's, through Redis)."""

    def publish(self, llm: str, seconds: float, kind: ErrorKind) -> None:
        """``llm`` starts a cooldown of ``seconds`` after an error of ``kind``."""
        ...

    def cooldowns(self) -> dict[str, tuple[float, ErrorKind]]:
        """Seconds left and error kind per child cooling down now."""
        ...


class ChildHealth:
    """Consecutive failures, cooldowns and probes of the children of one dispatcher.

    Args:
        policy: Thresholds and cooldown lengths.
        clock: Monotonic seconds (injectable).
        board: Where cooldowns are shared with other replicas (None: this process only).

    Example:
        >>> from mixllm_core.latency import ManualClock
        >>> clock = ManualClock()
        >>> health = ChildHealth(RetryPolicy(failure_threshold=2, cooldown_s=10), clock)
        >>> health.failed("a", ErrorKind.SERVER), health.failed("a", ErrorKind.SERVER)
        (0.0, 10.0)
        >>> health.blocked(["a", "b"])
        {'a'}
        >>> clock.advance(10)
        >>> health.blocked(["a", "b"], owner="call-1"), health.blocked(["a", "b"], owner="call-2")
        (set(), {'a'})
    """

    def __init__(
        self,
        policy: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
        *,
        board: CooldownBoard | None = None,
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.board = board
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()

    def _state(self, llm: str) -> _State:
        state = self._states.get(llm)
        if state is None:
            state = self._states[llm] = _State()
        return state

    def _merge(self) -> None:
        """Cool down here the children the board says cool down elsewhere."""
        if self.board is None:
            return
        shared = self.board.cooldowns()
        if not shared:
            return
        now = self.clock()
        with self._lock:
            for llm, (left, kind) in shared.items():
                state = self._state(llm)
                if now + left > state.until + 1e-3:
                    state.until, state.kind, state.probation = now + left, kind, True

    # ------------------------------------------------------------------ reading
    def cooling_down(self) -> dict[str, float]:
        """Seconds of cooldown left per child cooling down now."""
        self._merge()
        now = self.clock()
        with self._lock:
            return {n: s.until - now for n, s in self._states.items() if s.until > now}

    def remaining(self, llm: str) -> float:
        """Seconds of cooldown ``llm`` has left (0 when it is not cooling down)."""
        self._merge()
        now = self.clock()
        with self._lock:
            state = self._states.get(llm)
            return 0.0 if state is None else max(state.until - now, 0.0)

    def last_resort(self, llms: Iterable[str]) -> str | None:
        """Of ``llms``, the child cooling down after transient failures (timeouts, connection
        or server errors, rejected answers; not a rate limit or hard errors) whose cooldown ends
        first: one more try for a call that would otherwise fail. None when there is none."""
        self._merge()
        now = self.clock()
        with self._lock:
            spare = [
                (s.until, n)
                for n in llms
                if (s := self._states.get(n)) is not None
                and s.until > now
                and s.owner is None
                and s.kind in _TRANSIENT
            ]
        return min(spare)[1] if spare else None

    def blocked(
        self, llms: Iterable[str], *, owner: object | None = None, probe: bool = True
    ) -> set[str]:
        """Of ``llms``, those not to route to now: cooling down, or on probation with the probe
        held by another call (or, with ``probe=False``, on probation at all).

        With an ``owner``, every child on probation that it may use is reserved for it.
        """
        self._merge()
        now = self.clock()
        out: set[str] = set()
        with self._lock:
            for llm in llms:
                state = self._states.get(llm)
                if state is None:
                    continue
                if state.until > now:
                    out.add(llm)
                elif state.probation:
                    if not probe or (state.owner is not None and state.owner is not owner):
                        out.add(llm)
                    elif owner is not None:
                        state.owner = owner
        return out

    # ------------------------------------------------------------------ an attempt's life
    def begin(self, llm: str, owner: object) -> bool:
        """``owner`` starts an attempt on ``llm``; its other reservations are given back.

        Returns whether the attempt is the probe of a child on probation.
        """
        now = self.clock()
        with self._lock:
            for name, state in self._states.items():
                if name != llm and state.owner is owner:
                    state.owner = None
            chosen = self._states.get(llm)
            if chosen is None or not chosen.probation or chosen.until > now:
                return False
            if chosen.owner is None:
                chosen.owner = owner
            return chosen.owner is owner

    def release(self, owner: object) -> None:
        """Give back every probe ``owner`` holds (its attempt ended, or it was never made)."""
        with self._lock:
            for state in self._states.values():
                if state.owner is owner:
                    state.owner = None

    def succeeded(self, llm: str) -> None:
        """``llm`` answered: healthy again."""
        with self._lock:
            state = self._state(llm)
            state.failures, state.until, state.kind, state.probation = 0, 0.0, None, False
            state.recent.append(False)

    def failed(self, llm: str, kind: ErrorKind, retry_after: float | None = None) -> float:
        """``llm`` failed with ``kind``; returns the cooldown this started (0.0: none)."""
        policy = self.policy
        now = self.clock()
        with self._lock:
            state = self._state(llm)
            state.failures += 1
            state.recent.append(True)
            rate = sum(state.recent) / len(state.recent)
            starts = (
                kind is ErrorKind.RATE_LIMIT
                or state.probation
                or (state.failures >= policy.failure_threshold and rate >= policy.failure_rate)
            )
            if not starts:
                return 0.0
            seconds = policy.cooldown(kind, retry_after)
            state.until = max(state.until, now + seconds)
            state.kind, state.probation = kind, True
        if self.board is not None:
            self.board.publish(llm, seconds, kind)
        return seconds
