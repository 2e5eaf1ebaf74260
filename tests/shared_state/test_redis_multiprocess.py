"""Replicas as real processes on one real Redis: one global budget held by four processes
spending at once, one process's in-flight calls in another's latency penalty (and dropped when
it is killed), and Redis stopped and restarted under four busy processes: no failed call, and
the fleet's spend converges.

The processes are forked (the parent's imports are reused: a spawned interpreter would import
the stack again, seconds per process on a busy CI machine).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import time
from multiprocessing.synchronize import Barrier, Event
from typing import Any

import pytest
from redis_fixture import RedisServer

from mixllm_core import DecisionPolicy, Dispatcher, LLMSpec, MixLLMRouter
from mixllm_core.shared_state import SharedState
from mixllm_core.testing import HashingEncoder

QUERY = "Summarise the attached quarterly report in three bullet points."
BUDGET = 2.0
CTX = mp.get_context("fork")


@pytest.fixture(autouse=True, scope="module")
def _warm() -> None:
    """Route once before forking, so that the children do not each import what a first route
    imports lazily (the predictors' estimators)."""
    MixLLMRouter(["a", "b"], encoder=HashingEncoder()).route(QUERY)


def replica(url: str, **settings: float) -> MixLLMRouter:
    pool = [LLMSpec("cheap"), LLMSpec("paid", input_price=500.0, output_price=500.0)]
    settings = {"timeout_s": 1.0} | settings  # no timeout on a busy CI machine
    state = SharedState(url, prefix="fleet", **settings)
    policy = DecisionPolicy(lam=1e6, beta=1.0, budget=BUDGET)
    return MixLLMRouter(pool, encoder=HashingEncoder(), policy=policy, shared_state=state)


def _spend(url: str, start: Barrier, out: Any, calls: int) -> None:
    router = replica(url)
    start.wait()
    spent = paid = 0.0
    for _ in range(calls):
        d = router.route(QUERY)
        time.sleep(0.002)  # the call is in flight
        cost = d.predicted_cost if d.llm == "paid" else 0.0
        router.record_outcome(d.decision_id, cost=cost)
        spent, paid = spent + cost, max(paid, cost)
    out.put((spent, paid))


def test_four_processes_spending_at_once_hold_one_budget(redis_url: str) -> None:
    start, out = CTX.Barrier(4), CTX.Queue()
    procs = [CTX.Process(target=_spend, args=(redis_url, start, out, 12)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    total = sum(s for s, _ in results)
    one_call = max(c for _, c in results)
    assert all(p.exitcode == 0 for p in procs)
    assert 0 < one_call < 0.2
    # four local budgets would have spent 4 × BUDGET; the fleet spends one, to one call's cost
    assert BUDGET - one_call <= total <= BUDGET + one_call
    assert replica(redis_url).budget.remaining() == pytest.approx(BUDGET - total, abs=1e-9)


def _hold_calls(url: str, ready: Event, done: Event) -> None:
    router = replica(url, replica_ttl_s=0.5)
    tokens = [router.tracker.start("paid") for _ in range(3)]
    ready.set()
    done.wait(30)
    for token in tokens:
        router.tracker.finish(token)


def _penalty(router: MixLLMRouter) -> float:
    return {c.llm: c.wait_s for c in router.route(QUERY).candidates}["paid"]


def _wait_for(check: Any, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_another_process_in_flight_calls_raise_the_penalty_until_they_end_or_it_dies(
    redis_url: str,
) -> None:
    me = replica(redis_url, refresh_s=0.0)
    assert _penalty(me) == 0.0
    for kill in (False, True):
        ready, done = CTX.Event(), CTX.Event()
        proc = CTX.Process(target=_hold_calls, args=(redis_url, ready, done))
        proc.start()
        assert ready.wait(30)
        assert me.tracker.in_flight("paid") == 3
        assert _penalty(me) == pytest.approx(3 * me.tracker.service_time("paid"))
        if kill:  # kill -9: its calls never finish; dropped after its replica_ttl_s (0.5 s)
            os.kill(proc.pid or 0, signal.SIGKILL)
        else:
            done.set()
        proc.join(10)
        assert _wait_for(lambda: me.tracker.in_flight("paid") == 0), f"kill={kill}"
        assert _penalty(me) == 0.0


def _busy(url: str, start: Barrier, out: Any, seconds: float) -> None:
    logging.disable(logging.WARNING)  # the outage warning: once per process
    router = replica(url, refresh_s=0.0, retry_after_s=0.1)  # stopped: refused at once
    dispatcher = Dispatcher(router)
    start.wait()
    calls = failed = 0
    spent = 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            result = dispatcher.call(QUERY, lambda name, d: name)
            spent += 0.0 if result.usage is None else float(result.usage.cost or 0.0)
        except Exception:  # noqa: BLE001 - counted: must stay 0
            failed += 1
        calls += 1
        time.sleep(0.005)
    out.put((calls, failed, spent, router.tracker.in_flight("paid")))


def test_redis_stopped_mid_run_fails_no_call_and_the_fleet_converges_after_restart(
    redis_server: RedisServer, redis_url: str
) -> None:
    start, out = CTX.Barrier(5), CTX.Queue()
    procs = [CTX.Process(target=_busy, args=(redis_url, start, out, 1.5)) for _ in range(4)]
    for p in procs:
        p.start()
    start.wait()
    time.sleep(0.3)
    redis_server.stop()
    time.sleep(0.4)
    redis_server.start()  # empty: the replicas publish their state again
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    assert sum(failed for _, failed, _, _ in results) == 0
    assert all(calls > 5 for calls, _, _, _ in results)
    total = sum(spent for _, _, spent, _ in results)
    assert total > 0
    # the spend every replica published again after the restart adds up to what they spent
    assert replica(redis_url).budget.remaining() == pytest.approx(max(BUDGET - total, 0.0))


def _forked_replica(router: MixLLMRouter, ready: Event, done: Event) -> None:
    d = router.route(QUERY)
    router.record_outcome(d.decision_id, cost=0.5)
    token = router.tracker.start("paid")
    ready.set()
    done.wait(30)
    router.tracker.finish(token)


def test_a_router_built_before_a_fork_is_a_replica_of_its_own_in_each_process(
    redis_url: str,
) -> None:
    router = replica(redis_url, refresh_s=0.0)  # built once, then forked (a preloading server)
    router.record_outcome(router.route(QUERY).decision_id, cost=0.3)
    ready, done = CTX.Event(), CTX.Event()
    proc = CTX.Process(target=_forked_replica, args=(router, ready, done))
    proc.start()
    try:
        assert ready.wait(30)
        assert router.tracker.in_flight("paid") == 1  # the child's call, under the child's name
        router.record_outcome(router.route(QUERY).decision_id, cost=0.1)
        # each process published its own spend: 0.3 + 0.1 here, 0.5 in the child
        assert router.budget.remaining() == pytest.approx(BUDGET - 0.9)
    finally:
        done.set()
        proc.join(10)
    assert proc.exitcode == 0
