"""`SharedLatencyTracker`: the latency penalty sees the in-flight calls of the whole fleet.

Each replica keeps its own :class:`~mixllm_core.LatencyTracker` (the local truth) and publishes
it under its replica id: the hash ``{prefix}:replica:{id}`` holds ``f:{llm}`` (its calls in
flight) and ``s:{llm}`` (its learned service time), written whole at each change (a snapshot
with a sequence number, so concurrent writes cannot leave an older one behind), and the sorted
set ``{prefix}:replicas`` when each replica was last heard from. A route reads the fleet at most every ``refresh_s`` (one Lua
call): in flight is this replica's live count plus every other live replica's, the service time
the mean of the replicas' learned ones. A replica not heard from for ``replica_ttl_s`` (a crash,
``kill -9``; each of its routes and calls is a sign of life) is dropped with its counts; should
it still be alive, its next write publishes them again. While Redis is down the tracker is the
local one; when it is back (or restarted empty) each replica publishes its counts again, so the
fleet view converges without double counting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..latency import CallOutcome, LatencyTracker
from .link import RedisLink, ReplicaName

__all__ = ["SharedLatencyTracker"]

# KEYS[1] replicas zset; ARGV: replica key prefix, my id, now (ms), ttl (ms).
# Drops dead replicas, refreshes my last-seen time; returns {known, field, value, ...} over the
# other live replicas (known = 0: my entry is missing, publish everything again).
_READ = """
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[4]))
for _, r in ipairs(dead) do
  redis.call('DEL', ARGV[1] .. r)
  redis.call('ZREM', KEYS[1], r)
end
local out = {0}
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  out[1] = 1
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
  redis.call('PEXPIRE', ARGV[1] .. ARGV[2], ARGV[4])
end
for _, r in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if r ~= ARGV[2] then
    for _, v in ipairs(redis.call('HGETALL', ARGV[1] .. r)) do out[#out + 1] = v end
  end
end
return out
"""


# KEYS: my replica hash, replicas zset. ARGV: seq, ttl (ms), now (ms), my id, field, value, ...
# Writes the snapshot unless a later one is there already; refreshes my last-seen time.
_PUBLISH = """
local last = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if tonumber(ARGV[1]) > last then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'seq', ARGV[1], unpack(ARGV, 5))
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
return 1
"""


class SharedLatencyTracker(LatencyTracker):
    """A :class:`~mixllm_core.LatencyTracker` whose readings cover every replica.

    Built by :meth:`SharedState.tracker`; see the module docstring for what is stored where.
    """

    def __init__(
        self,
        link: RedisLink,
        prefix: str,
        replica: str,
        *,
        refresh_s: float = 0.05,
        replica_ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        smoothing: float = 0.2,
        default_service_s: float = 1.0,
    ) -> None:
        super().__init__(clock, smoothing=smoothing, default_service_s=default_service_s)
        self.link = link
        self._name = ReplicaName(replica)
        self.refresh_s = refresh_s
        self.replica_ttl_s = replica_ttl_s
        self.wall = wall
        self._replicas_key = f"{prefix}:replicas"
        self._replica_prefix = f"{prefix}:replica:"
        self._read = link.client.register_script(_READ)
        self._llms: set[str] = set()  # every LLM this replica tracked (under _llms_lock)
        self._llms_lock = threading.Lock()
        self._seq = 0  # of the last snapshot published (under _llms_lock)
        self._publish = link.client.register_script(_PUBLISH)
        self._others: tuple[dict[str, int], dict[str, list[float]]] | None = None
        self._read_at = -float("inf")
        self._refreshing = threading.Lock()
        link.on_recover(self.publish_all)

    @property
    def replica(self) -> str:
        """This replica's id (a process forked from this one gets its own)."""
        return str(self._name)

    @property
    def _key(self) -> str:
        return self._replica_prefix + self.replica

    # ------------------------------------------------------------------ writing
    def publish_all(self) -> None:
        """Publish this replica's in-flight counts and service times, all of them, as absolute
        values stamped with a sequence number: Redis keeps the latest, whatever the order in
        which concurrent writes arrive, and a lost or expired entry is whole again at once."""
        with self._llms_lock:
            self._seq += 1
            seq = self._seq
            args: list[Any] = []
            for llm in sorted(self._llms):
                args += [f"f:{llm}", super().in_flight(llm)]
                known = self.known_service(llm)
                if known is not None:
                    args += [f"s:{llm}", repr(known)]
        ttl_ms = int(self.replica_ttl_s * 1000)
        now_ms = int(self.wall() * 1000)
        self.link.call(
            lambda r: self._publish(
                keys=[self._key, self._replicas_key],
                args=[seq, ttl_ms, now_ms, self.replica, *args],
            ),
            None,
        )

    def _seen(self, llm: str) -> None:
        if llm not in self._llms:
            with self._llms_lock:
                self._llms.add(llm)

    def start(self, llm: str) -> str:
        token = super().start(llm)
        self._seen(llm)
        self.publish_all()
        return token

    def finish(self, token: str, *, ok: bool = True) -> CallOutcome:
        outcome = super().finish(token, ok=ok)
        self.publish_all()
        return outcome

    def observe_service(self, llm: str, seconds: float) -> None:
        super().observe_service(llm, seconds)
        self._seen(llm)
        self.publish_all()

    # ------------------------------------------------------------------ reading
    def _fleet(self) -> tuple[dict[str, int], dict[str, list[float]]] | None:
        """The other replicas' in-flight counts and service times (None: local only)."""
        now = self.clock()
        if now - self._read_at >= self.refresh_s and self._refreshing.acquire(blocking=False):
            try:
                self._read_at = now
                self._others = self.link.call(self._fetch, None)
            finally:
                self._refreshing.release()
        return self._others if self.link.up else None

    def _fetch(self, r: Any) -> tuple[dict[str, int], dict[str, list[float]]]:
        ttl_ms = int(self.replica_ttl_s * 1000)
        now_ms = int(self.wall() * 1000)
        raw = self._read(
            keys=[self._replicas_key], args=[self._replica_prefix, self.replica, now_ms, ttl_ms]
        )
        busy: dict[str, int] = {}
        service: dict[str, list[float]] = {}
        for i in range(1, len(raw) - 1, 2):
            field, value = raw[i].decode(), raw[i + 1]
            if field.startswith("f:"):
                busy[field[2:]] = busy.get(field[2:], 0) + max(int(value), 0)
            elif field.startswith("s:"):
                service.setdefault(field[2:], []).append(float(value))
        if not int(raw[0]):  # Redis lost this replica (restart, expiry): publish it again
            self.publish_all()
        return busy, service

    def in_flight(self, llm: str) -> int:
        """Calls to ``llm`` in flight in the whole fleet (this replica's live count included)."""
        fleet = self._fleet()
        mine = super().in_flight(llm)
        return mine if fleet is None else mine + fleet[0].get(llm, 0)

    def service_time(self, llm: str) -> float:
        """The mean of the replicas' learned service times of ``llm`` (the default before any)."""
        fleet = self._fleet()
        values = [] if fleet is None else list(fleet[1].get(llm, ()))
        known = self.known_service(llm)
        if known is not None:
            values.append(known)
        return sum(values) / len(values) if values else self.default_service_s
