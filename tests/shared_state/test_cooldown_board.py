"""ChildHealth with a shared cooldown board (no Redis: a board in memory, one clock)."""

from __future__ import annotations

from mixllm_core.dispatch.health import ChildHealth
from mixllm_core.dispatch.retry import ErrorKind, RetryPolicy
from mixllm_core.latency import ManualClock


class MemoryBoard:
    """The :class:`CooldownBoard` of replicas that share one clock."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.until: dict[str, tuple[float, ErrorKind]] = {}

    def publish(self, llm: str, seconds: float, kind: ErrorKind) -> None:
        self.until[llm] = (self.clock() + seconds, kind)

    def cooldowns(self) -> dict[str, tuple[float, ErrorKind]]:
        now = self.clock()
        return {n: (u - now, k) for n, (u, k) in self.until.items() if u > now}


def test_a_cooldown_one_health_starts_holds_for_the_other_then_each_probes_once() -> None:
    clock = ManualClock()
    board = MemoryBoard(clock)
    policy = RetryPolicy(rate_limit_cooldown_s=10.0)
    a, b = ChildHealth(policy, clock, board=board), ChildHealth(policy, clock, board=board)
    assert a.failed("x", ErrorKind.RATE_LIMIT) == 10.0
    assert b.blocked(["x", "y"]) == {"x"}
    assert b.remaining("x") == 10.0 and b.last_resort(["x"]) is None  # a rate limit: no retry
    clock.advance(10.0)
    # over: b lets one call probe it, as after a cooldown of its own
    assert b.blocked(["x"], owner="call-1") == set()
    assert b.blocked(["x"], owner="call-2") == {"x"}
    b.begin("x", "call-1")
    b.succeeded("x")
    b.release("call-1")
    assert b.blocked(["x"], owner="call-2") == set() and b.cooling_down() == {}


def test_without_a_board_cooldowns_stay_local() -> None:
    clock = ManualClock()
    a, b = ChildHealth(RetryPolicy(), clock), ChildHealth(RetryPolicy(), clock)
    a.failed("x", ErrorKind.RATE_LIMIT)
    assert a.blocked(["x"]) == {"x"} and b.blocked(["x"]) == set()
