"""`SharedBudget`: one spend budget per period for the whole fleet, held by reservations.

Periods are aligned to the Unix epoch (wall clock), so every replica agrees on them: a budget
per hour resets on the hour. Keys: ``{prefix}:spent:{period}`` is a hash of what each replica
spent in the period (absolute values, so a replica can publish it again after an outage without
counting anything twice); ``{prefix}:held`` / ``{prefix}:holds`` hold the predicted cost of
calls routed and not yet finished, with an expiry (``hold_ttl_s``) for calls whose outcome never
comes. A route *holds* the chosen LLM's predicted cost with one Lua call that checks and
reserves atomically; the router decides again when the hold is refused, so N replicas together
stay within the budget up to the difference between predicted and actual costs (at most one
call's cost when they agree). The outcome releases the hold and adds the actual cost.

While Redis is down, a replica keeps spending against the last fleet total it read, minus its own
spend since; when Redis is back it publishes its spend for the period and releases the holds it
could not.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from ..decision import BudgetTracker
from .link import RedisLink, ReplicaName

__all__ = ["SharedBudget"]

# KEYS: spent hash of the period, held hash, holds zset. ARGV: budget, id, amount, now, expiry.
# Drops expired holds; with amount > 0 reserves it when it fits. Returns {ok, left}.
_HOLD = """
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[4])) do
  redis.call('HDEL', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
end
local used = 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do used = used + tonumber(v) end
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do used = used + tonumber(v) end
local left = tonumber(ARGV[1]) - used
local amount = tonumber(ARGV[3])
if amount > 0 then
  if amount > left + 1e-12 then return {0, tostring(left)} end
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2])
  left = left - amount
end
return {1, tostring(left)}
"""


class SharedBudget(BudgetTracker):
    """A :class:`~mixllm_core.decision.BudgetTracker` shared by every replica (see the module
    docstring). Built by :meth:`SharedState.budget`."""

    def __init__(
        self,
        link: RedisLink,
        prefix: str,
        replica: str,
        budget: float | None,
        period_s: float = 3600.0,
        *,
        refresh_s: float = 0.05,
        hold_ttl_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(budget, period_s, clock)
        self.link = link
        self.prefix = prefix
        self._name = ReplicaName(replica)
        self.refresh_s = refresh_s
        self.hold_ttl_s = hold_ttl_s
        self.wall = wall
        self._hold = link.client.register_script(_HOLD)
        self._mine: dict[int, float] = {}  # this replica's spend per period
        self._left: tuple[int, float, float, float] | None = None  # period, left, mine, at
        self._unreleased: set[str] = set()  # holds Redis could not be told to release
        self._state_lock = threading.Lock()
        self._pid = os.getpid()
        link.on_recover(self.publish)

    @property
    def replica(self) -> str:
        """This replica's id (a process forked from this one gets its own)."""
        return str(self._name)

    def _period(self) -> int:
        if os.getpid() != self._pid:  # forked: what the parent spent stays the parent's
            with self._state_lock:
                self._pid = os.getpid()
                self._mine, self._left, self._unreleased = {}, None, set()
        return math.floor(self.wall() / self.period_s)

    def _keys(self, period: int) -> list[str]:
        p = self.prefix
        return [f"{p}:spent:{period}", f"{p}:held", f"{p}:holds"]

    def _ask(self, amount: float, decision_id: str) -> tuple[bool, float] | None:
        """Run the hold script (``amount`` 0: only read); None when Redis is down."""
        period = self._period()
        now = self.wall()

        def send(r: Any) -> tuple[bool, float]:
            ok, left = self._hold(
                keys=self._keys(period),
                args=[self.budget, decision_id, repr(amount), now, now + self.hold_ttl_s],
            )
            return bool(int(ok)), float(left)

        answer = self.link.call(send, None)
        if answer is not None:
            with self._state_lock:
                mine = self._mine.get(period, 0.0) + (amount if answer[0] else 0.0)
                self._left = (period, answer[1], mine, self.clock())
        return answer

    def _local_left(self, budget: float) -> float:
        """What is left by the last fleet reading, less this replica's spend since."""
        period = self._period()
        with self._state_lock:
            mine = self._mine.get(period, 0.0)
            if self._left is None or self._left[0] != period:
                return budget - mine
            return self._left[1] - (mine - self._left[2])

    def remaining(self) -> float:
        """USD left in the fleet's budget for this period (read at most every ``refresh_s``)."""
        if self.budget is None:
            return math.inf
        seen = self._left
        if self.link.up and (seen is None or self.clock() - seen[3] >= self.refresh_s):
            self._ask(0.0, "")
        return max(self._local_left(self.budget), 0.0)

    def hold(self, decision_id: str, usd: float) -> bool:
        """Reserve ``usd`` for the call ``decision_id`` when it fits what the fleet has left."""
        if self.budget is None or not usd > 0:
            return True
        answer = self._ask(float(usd), decision_id)
        if answer is None:
            return usd <= self._local_left(self.budget) + 1e-12
        return answer[0]

    def charge(self, usd: float) -> None:
        self.settle("", usd)

    def settle(self, decision_id: str, usd: float | None) -> None:
        """Release the hold of ``decision_id`` and add ``usd`` (the actual cost) to the spend."""
        period = self._period()
        with self._state_lock:
            mine = self._mine[period] = self._mine.get(period, 0.0) + max(float(usd or 0.0), 0.0)
            for old in [p for p in self._mine if p < period - 1]:
                del self._mine[old]
        if self.budget is None:
            return
        held = [decision_id] if decision_id else []
        if not self._send(period, mine, held):
            with self._state_lock:
                self._unreleased.update(held)

    def _send(self, period: int, mine: float, held: list[str]) -> bool:
        spent, held_key, holds_key = self._keys(period)

        def send(r: Any) -> bool:
            pipe = r.pipeline(transaction=False)
            if held:
                pipe.hdel(held_key, *held)
                pipe.zrem(holds_key, *held)
            pipe.hset(spent, self.replica, repr(mine))
            pipe.pexpire(spent, int(2 * self.period_s * 1000))
            pipe.execute()
            return True

        return self.link.call(send, False)

    def publish(self) -> None:
        """Publish this replica's spend for the period and release the holds left behind."""
        if self.budget is None:
            return
        period = self._period()
        with self._state_lock:
            mine = self._mine.get(period, 0.0)
            held, self._unreleased = sorted(self._unreleased), set()
        if not self._send(period, mine, held):
            with self._state_lock:
                self._unreleased.update(held)
