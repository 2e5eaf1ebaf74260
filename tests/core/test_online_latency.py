from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from mixllm_core import LatencyTracker
from mixllm_core.online import OnlineHead, OnlineHeads
from mixllm_core.testing import FakeClock


def test_online_head_equals_closed_form_ridge() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 5))
    y = X @ rng.normal(size=5) + 0.3 + rng.normal(scale=0.1, size=60)
    head = OnlineHead(5, ridge=2.0)
    for x, t in zip(X, y):
        head.learn_one(x, t)
    Z = np.hstack([X, np.ones((60, 1))])
    A = 2.0 * np.eye(6) + Z.T @ Z
    theta = np.linalg.solve(A, Z.T @ y)
    np.testing.assert_allclose(head.theta, theta, atol=1e-8)
    np.testing.assert_allclose(head.A_inv, np.linalg.inv(A), atol=1e-10)
    Xt = rng.normal(size=(4, 5))
    Zt = np.hstack([Xt, np.ones((4, 1))])
    np.testing.assert_allclose(
        head.uncertainty(Xt), np.sqrt(np.einsum("nd,de,ne->n", Zt, np.linalg.inv(A), Zt))
    )


def test_stacked_heads_match_single_heads_and_shrink_uncertainty() -> None:
    rng = np.random.default_rng(1)
    heads = OnlineHeads(3)
    heads.add("a")
    heads.add("new", prior_scale=4.0)
    single = OnlineHead(3)
    x0 = rng.normal(size=(1, 3))
    _, before = heads.predict(["a", "new"], x0)
    for _ in range(30):
        x, t = rng.normal(size=3), rng.normal()
        heads.learn_one("a", x, t)
        single.learn_one(x, t)
    corr, after = heads.predict(["a", "new"], x0)
    np.testing.assert_allclose(corr[:, 0], single.predict(x0))
    assert after[0, 0] < before[0, 0]  # feedback narrows the bonus
    assert before[0, 1] == pytest.approx(2 * before[0, 0])  # a new LLM starts wide (scale 4)


def test_expected_wait_grows_with_in_flight_calls() -> None:
    clock = FakeClock()
    tracker = LatencyTracker(clock)
    tracker.observe_service("a", 2.0)
    tokens = [tracker.start("a") for _ in range(3)]
    assert tracker.expected_wait("a") == pytest.approx(6.0)
    tracker.set_concurrency("a", 2)
    assert tracker.expected_wait("a") == pytest.approx(2.0 * 2 / 2)
    clock.advance(1.0)
    for t in tokens:
        tracker.finish(t)
    assert tracker.in_flight("a") == 0
    assert tracker.service_time("a") < 2.0  # the 1 s calls pulled the average down


def test_tracker_is_safe_under_threads_and_asyncio() -> None:
    tracker = LatencyTracker()

    def work() -> None:
        for _ in range(500):
            with tracker.track("a"):
                pass

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    async def one() -> None:
        token = tracker.start("b")
        await asyncio.sleep(0)
        tracker.finish(token)

    async def many() -> None:
        await asyncio.gather(*(one() for _ in range(200)))

    asyncio.run(many())
    assert tracker.in_flight("a") == 0 and tracker.in_flight("b") == 0
