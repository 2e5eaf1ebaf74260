"""Live state shared through a real Redis: latency, budget and cooldowns across replicas, and
failing open (Redis frozen, stopped, restarted, or a port that never answers).

Each "replica" is a router with its own :class:`SharedState` (its own connection and replica id)
on one server; the multi-process runs are in test_redis_multiprocess.py.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from redis_fixture import RedisServer

from mixllm_core import DecisionPolicy, Dispatcher, LLMSpec, MixLLMRouter
from mixllm_core.errors import ConfigError
from mixllm_core.shared_state import SharedState
from mixllm_core.shared_state.link import redact_url
from mixllm_core.testing import HashingEncoder

QUERY = "Summarise the attached quarterly report in three bullet points."


def replica(url: str, policy: DecisionPolicy | None = None, **settings: float) -> MixLLMRouter:
    """One replica of a two-LLM pool: ``cheap`` (free) and ``paid``."""
    pool = [LLMSpec("cheap"), LLMSpec("paid", input_price=500.0, output_price=500.0)]
    settings = {"refresh_s": 0.0, "timeout_s": 1.0} | settings  # 1 s: no timeout on a busy CI box
    state = SharedState(url, prefix="pool", **settings)
    return MixLLMRouter(pool, encoder=HashingEncoder(), policy=policy, shared_state=state)


def test_in_flight_calls_of_one_replica_raise_the_latency_penalty_of_another(
    redis_url: str,
) -> None:
    policy = DecisionPolicy(lam=1.0, beta=1.0)
    a, b = replica(redis_url, policy), replica(redis_url, policy)
    before = b.route(QUERY).chosen.wait_s
    tokens = [a.tracker.start("cheap") for _ in range(3)]
    decision = b.route(QUERY)
    assert b.tracker.in_flight("cheap") == 3 and a.tracker.in_flight("cheap") == 3
    assert before == 0.0
    assert {c.llm: c.wait_s for c in decision.candidates}["cheap"] == pytest.approx(3.0)
    for token in tokens:
        a.tracker.finish(token)
    assert b.tracker.in_flight("cheap") == 0
    # a's learned service time reaches b as the fleet mean
    assert b.tracker.service_time("cheap") == pytest.approx(a.tracker.service_time("cheap"))
    assert b.tracker.service_time("cheap") < 0.5


def test_two_replicas_hold_one_budget(redis_url: str) -> None:
    policy = DecisionPolicy(lam=1e6, budget=1.0)
    a, b = replica(redis_url, policy), replica(redis_url, policy)
    spent = 0.0
    cost = None
    for i in range(40):
        router = (a, b)[i % 2]
        d = router.route(QUERY)
        if d.llm == "paid":
            cost = d.predicted_cost
            spent += cost
        router.record_outcome(d.decision_id, cost=d.predicted_cost if d.llm == "paid" else 0.0)
    assert cost is not None and 0 < cost < 0.2
    assert 1.0 - cost <= spent <= 1.0 + 1e-9  # a local budget each would have spent 2.0
    assert a.budget.remaining() == pytest.approx(b.budget.remaining(), abs=1e-9)
    assert b.budget.remaining() < cost


def test_open_holds_count_against_the_budget_of_every_replica(redis_url: str) -> None:
    policy = DecisionPolicy(lam=1e6, budget=1.0)
    a, b = replica(redis_url, policy), replica(redis_url, policy)
    held = []
    while True:  # routed, not finished: the calls are in flight
        d = a.route(QUERY)
        if d.llm != "paid":
            break
        held.append(d)
    assert held and b.route(QUERY).llm == "cheap"  # nothing left for b
    for d in held:  # the calls failed: nothing spent, the holds are released
        a.record_outcome(d.decision_id, cost=None, error="TimeoutError")
    assert b.route(QUERY).llm == "paid"


def _rate_limited(name: str, decision: object) -> str:
    raise RuntimeError("429 Too Many Requests: rate limit exceeded")


def test_a_cooldown_started_by_one_replica_holds_for_another(redis_url: str) -> None:
    a, b = replica(redis_url), replica(redis_url)
    da = Dispatcher(a, max_retries=0, cooldown_s=30)
    db = Dispatcher(b, max_retries=0)
    with pytest.raises(Exception, match="rate limit"):
        da.call(QUERY, _rate_limited, pin="paid")
    assert "paid" in da.cooling_down()
    assert db.cooling_down() == {"paid"}
    assert db.call(QUERY, lambda name, d: name, lam=1e6).value == "cheap"  # paid would score best


@pytest.fixture
def quiet_warnings(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="mixllm_core.shared_state"):
        yield caplog


def test_a_frozen_redis_fails_no_call_warns_once_and_state_converges_after(
    redis_server: RedisServer,
    redis_url: str,
    quiet_warnings: pytest.LogCaptureFixture,
) -> None:
    a = replica(redis_url, timeout_s=0.05, retry_after_s=0.2)
    b = replica(redis_url, timeout_s=0.05, retry_after_s=0.2)
    da = Dispatcher(a)
    redis_server.freeze()
    try:
        token = a.tracker.start("cheap")  # published while Redis is down: lost for now
        t0 = time.perf_counter()
        answers = [da.call(QUERY, lambda name, d: name).value for _ in range(20)]
        elapsed = time.perf_counter() - t0
    finally:
        redis_server.thaw()
    assert answers == [answers[0]] * 20
    # one timeout per retry_after_s (0.2 s) at most, not one per call
    assert a.shared_state is not None
    assert a.shared_state.link.failures <= 1 + elapsed / 0.2
    warned = [r.message for r in quiet_warnings.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "unreachable" in warned[0]
    time.sleep(0.25)  # past retry_after_s: the next call tries Redis again
    assert a.tracker.in_flight("cheap") == 1
    assert b.tracker.in_flight("cheap") == 1  # a published its counts again on recovery
    assert any("is back" in r.message for r in quiet_warnings.records)
    a.tracker.finish(token)
    assert b.tracker.in_flight("cheap") == 0


def test_a_restarted_empty_redis_gets_every_replicas_state_again(
    redis_server: RedisServer,
    redis_url: str,
    quiet_warnings: pytest.LogCaptureFixture,
) -> None:
    policy = DecisionPolicy(lam=1e6, budget=1.0)
    a = replica(redis_url, policy, retry_after_s=0.1)
    b = replica(redis_url, policy, retry_after_s=0.1)
    token = a.tracker.start("paid")
    d = a.route(QUERY)
    a.record_outcome(d.decision_id, cost=0.5)
    assert b.tracker.in_flight("paid") == 1
    redis_server.stop()
    failed = 0
    for _ in range(10):  # Redis is gone: routing goes on from local state
        try:
            a.record_outcome(a.route(QUERY).decision_id, cost=0.0)
        except Exception:  # noqa: BLE001 - counted, must stay 0
            failed += 1
    redis_server.start()  # empty: no persistence
    assert failed == 0
    assert b.tracker.in_flight("paid") == 0 and b.budget.remaining() == 1.0  # all was lost
    time.sleep(0.15)  # past a's retry_after_s
    d = a.route(QUERY)  # a is back: it publishes its in-flight calls and its spend again
    assert d.llm == "paid"  # and holds this call's cost
    assert b.tracker.in_flight("paid") == 1
    assert b.budget.remaining() == pytest.approx(0.5 - d.predicted_cost)
    a.tracker.finish(token)
    assert b.tracker.in_flight("paid") == 0


def test_a_port_that_never_answers_costs_one_timeout_then_nothing() -> None:
    with socket.socket() as hole:  # accepts connections (backlog) and never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        url = f"redis://127.0.0.1:{hole.getsockname()[1]}/0"
        router = replica(url, DecisionPolicy(budget=1.0), timeout_s=0.05, retry_after_s=60)
        logging.disable(logging.WARNING)
        try:
            t0 = time.perf_counter()
            first = router.route(QUERY)
            elapsed = time.perf_counter() - t0
            assert router.shared_state is not None
            link = router.shared_state.link
            failures = link.failures
            for _ in range(5):
                router.record_outcome(router.route(QUERY).decision_id, cost=0.0)
        finally:
            logging.disable(logging.NOTSET)
    assert first.llm in ("cheap", "paid")
    assert failures == 1 and link.failures == 1  # the link stayed down: no more attempts
    assert elapsed < 2.0  # one 50 ms timeout (redis-py's default would wait forever)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="timeout_s"):
        SharedState("redis://127.0.0.1:6379/0", timeout_s=0)
    with pytest.raises(ConfigError, match="redis://"):
        SharedState("postgresql://db/x")
    with pytest.raises(ConfigError, match="prefix"):
        SharedState("redis://127.0.0.1:6379/0", prefix="two words")


def test_routers_loaded_with_a_url_share_their_state(redis_url: str, tmp_path: Path) -> None:
    replica(redis_url).save(tmp_path / "router")
    a = MixLLMRouter.load(tmp_path / "router", shared_state=redis_url)
    b = MixLLMRouter.load(tmp_path / "router", shared_state=redis_url)
    assert a.shared_state is not None and a.shared_state.prefix == "mixllm"
    token = a.tracker.start("paid")
    time.sleep(0.06)  # past the default refresh_s (50 ms) of b's fleet reading
    assert b.tracker.in_flight("paid") == 1
    a.tracker.finish(token)


def test_a_replica_dropped_while_a_call_runs_publishes_its_counts_again(redis_url: str) -> None:
    a = replica(redis_url, replica_ttl_s=0.2)
    b = replica(redis_url)
    first = a.tracker.start("paid")
    time.sleep(0.3)  # a is quiet for longer than its replica_ttl_s: b drops it
    assert b.tracker.in_flight("paid") == 0
    second = a.tracker.start("paid")
    a.tracker.finish(first)  # Redis had lost a's first call: a publishes its true counts
    assert a.tracker.in_flight("paid") == b.tracker.in_flight("paid") == 1
    a.tracker.finish(second)
    assert b.tracker.in_flight("paid") == 0


def test_while_redis_is_down_one_call_at_a_time_tries_it_again() -> None:
    with socket.socket() as hole:  # accepts connections and never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(64)
        state = SharedState(
            f"redis://127.0.0.1:{hole.getsockname()[1]}/0", timeout_s=0.5, retry_after_s=0.05
        )
        logging.disable(logging.WARNING)
        try:
            assert state.link.call(lambda r: r.ping(), "local") == "local"  # down now
            time.sleep(0.06)
            with ThreadPoolExecutor(8) as pool:  # 8 calls at once after retry_after_s
                answers = list(
                    pool.map(lambda _: state.link.call(lambda r: r.ping(), "local"), range(8))
                )
        finally:
            logging.disable(logging.NOTSET)
    assert answers == ["local"] * 8
    assert state.link.calls == 2  # the first, and one retry: the 7 others did not wait


@pytest.mark.parametrize(
    "url",
    [
        "redis://user:s3cret@cache:6379/0?password=s3cret",
        "unix://u:s3cret@host:notaport/x?token=s3cret",
    ],
)
def test_a_shown_url_hides_every_secret_and_never_raises(url: str) -> None:
    shown = redact_url(url)
    assert "s3cret" not in shown and ("cache" in shown or "host" in shown)
