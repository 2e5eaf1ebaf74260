"""`SharedCooldowns`: a child one replica puts on cooldown cools down for every replica.

The hash ``{prefix}:cooldowns`` maps each child to the end of its latest cooldown (wall clock,
milliseconds) and the kind of error that started it; a longer cooldown replaces a shorter one
(one Lua call), a past one is ignored. Each :class:`~mixllm_core.dispatch.health.ChildHealth`
reads it at most every ``refresh_s`` and cools the child down locally until then; probes after
it stay per replica (each replica lets one call probe the child). While Redis is down cooldowns
are per replica; when it is back each replica publishes the cooldowns it started that are still
running.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..dispatch.retry import ErrorKind
from .link import RedisLink

__all__ = ["SharedCooldowns"]

# KEYS[1] cooldowns hash; ARGV: child, until (ms), kind. Keeps the later end.
_PUBLISH = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (not cur) or tonumber(string.match(cur, '^[^:]+')) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
end
return 1
"""


class SharedCooldowns:
    """The fleet's cooldown board (a :class:`~mixllm_core.dispatch.health.CooldownBoard`).

    Built by :meth:`SharedState.cooldowns`; see the module docstring.
    """

    def __init__(
        self,
        link: RedisLink,
        prefix: str,
        *,
        refresh_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.link = link
        self.key = f"{prefix}:cooldowns"
        self.refresh_s = refresh_s
        self.clock = clock
        self.wall = wall
        self._publish = link.client.register_script(_PUBLISH)
        self._mine: dict[str, tuple[float, ErrorKind]] = {}  # child → (until, kind), wall clock
        self._seen: dict[str, tuple[float, ErrorKind]] = {}
        self._read_at = -float("inf")
        self._lock = threading.Lock()
        link.on_recover(self.publish_all)

    def publish(self, llm: str, seconds: float, kind: ErrorKind) -> None:
        """``llm`` cools down for ``seconds`` after an error of ``kind``, fleet-wide."""
        until = self.wall() + seconds
        with self._lock:
            old = self._mine.get(llm)
            if old is None or old[0] < until:
                self._mine[llm] = (until, kind)
        self._send(llm, until, kind)

    def _send(self, llm: str, until: float, kind: ErrorKind) -> None:
        self.link.call(
            lambda r: self._publish(keys=[self.key], args=[llm, int(until * 1000), kind.value]),
            None,
        )

    def publish_all(self) -> None:
        """Publish the cooldowns this replica started that are still running."""
        now = self.wall()
        with self._lock:
            running = {n: v for n, v in self._mine.items() if v[0] > now}
            self._mine = dict(running)
        for llm, (until, kind) in running.items():
            self._send(llm, until, kind)

    def cooldowns(self) -> dict[str, tuple[float, ErrorKind]]:
        """Seconds left and error kind per child cooling down in the fleet (read at most every
        ``refresh_s``; only this replica's own while Redis is down)."""
        now = self.clock()
        if now - self._read_at >= self.refresh_s:
            self._read_at = now
            self._seen = self.link.call(self._fetch, self._seen if self.link.up else {})
        wall = self.wall()
        seen = self._seen if self.link.up else {}
        with self._lock:
            merged = dict(self._mine)
        for llm, (until, kind) in seen.items():
            if llm not in merged or merged[llm][0] < until:
                merged[llm] = (until, kind)
        return {n: (until - wall, kind) for n, (until, kind) in merged.items() if until > wall}

    def _fetch(self, r: Any) -> dict[str, tuple[float, ErrorKind]]:
        out: dict[str, tuple[float, ErrorKind]] = {}
        for field, value in r.hgetall(self.key).items():
            until, _, kind = value.decode().partition(":")
            try:
                out[field.decode()] = (int(until) / 1000, ErrorKind(kind))
            except ValueError:  # written by another version: ignore the entry
                continue
        return out
