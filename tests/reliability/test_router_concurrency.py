"""Routing while the router learns or its pool changes: no error, no wait, nothing lost.

A route reads one immutable model; ``fit``, ``refit``, feedback and pool changes publish new
ones. These tests race them from threads (seeded queries, bounded by counts, not by luck) and
hold a refit still at chosen points with a log that pauses it.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from mixllm_core import ConfigError, FeedbackError, MixLLMRouter
from mixllm_core.errors import UnknownLLMError
from mixllm_core.log import LoggedFeedback, MemoryLog
from mixllm_core.testing import HashingEncoder, make_synthetic_world

WORLD = make_synthetic_world(600, seed=5)
QUERIES = [str(q) for q in WORLD.queries]


def _router(**kwargs: Any) -> MixLLMRouter:
    return MixLLMRouter(encoder=HashingEncoder(), seed=0, **kwargs).fit(WORLD.subset(range(300)))


def _race(router: MixLLMRouter, change: Callable[[int], None], n_changes: int) -> list[str]:
    """Three threads route (a third of the calls exclude ``tiny-7b``) while the calling thread
    makes ``n_changes`` changes; returns every error a route raised."""
    errors: list[str] = []
    stop = threading.Event()
    routed = [0, 0, 0]

    def work(k: int) -> None:
        i = k
        while not stop.is_set() or routed[k] < 50:
            try:
                router.route(QUERIES[i % len(QUERIES)], exclude=["tiny-7b"] if i % 3 else ())
            except Exception as exc:  # noqa: BLE001 - every failure is the finding
                errors.append(f"{type(exc).__name__}: {exc}")
            routed[k] += 1
            i += 3

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    try:
        for n in range(n_changes):
            change(n)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert min(routed) >= 50
    return errors


def test_routes_never_fail_while_the_pool_changes() -> None:
    router = _router()
    spec = WORLD.specs["tiny-7b"]

    def churn(n: int) -> None:
        if n % 2 == 0:
            router.remove_llm("tiny-7b")
        else:
            router.add_llm(spec)

    assert _race(router, churn, 400) == []
    assert router.llms[-1] == "tiny-7b" and len(router.llms) == 5


def test_routes_never_fail_while_the_router_refits_and_learns() -> None:
    router = _router()
    for i, q in enumerate(QUERIES[300:340]):
        router.feedback(router.route(q).decision_id, score=float(i % 2))
    stream = iter(QUERIES[340:])

    def learn(n: int) -> None:
        if n % 4 == 0:
            router.refit()
        else:
            router.feedback(router.route(next(stream)).decision_id, thumbs=bool(n % 3))

    assert _race(router, learn, 12) == []  # 3 whole refits (each learns the encoder again)


def test_excluding_an_llm_that_was_just_removed_is_not_an_error() -> None:
    router = _router()
    router.remove_llm("frontier")
    d = router.route(QUERIES[0], exclude=["frontier", "tiny-7b"])
    assert d.llm not in ("frontier", "tiny-7b")
    assert router.route_batch(QUERIES[:3], exclude=["frontier"])[0].llm != "frontier"
    with pytest.raises(UnknownLLMError, match="'never-there'"):  # a typo is still an error
        router.route(QUERIES[0], exclude=["never-there"])


class _RemovingEncoder(HashingEncoder):
    """Removes an LLM from the router in the middle of a route (after it read its model)."""

    def __init__(self) -> None:
        super().__init__()
        self.router: MixLLMRouter | None = None
        self.remove: str | None = None

    def encode(self, texts: Any, *, show_progress: bool = False) -> np.ndarray:
        if self.router is not None and self.remove is not None:
            name, self.remove = self.remove, None
            self.router.remove_llm(name)
        return super().encode(texts, show_progress=show_progress)


def test_a_route_racing_a_removal_returns_an_llm_of_the_new_pool() -> None:
    encoder = _RemovingEncoder()
    router = MixLLMRouter(encoder=encoder, seed=0).fit(WORLD.subset(range(300)))
    q = QUERIES[0]
    chosen = router.route(q, lam=1000).llm  # quality first: the same LLM each time
    assert router.route(q, lam=1000).llm == chosen
    encoder.router, encoder.remove = router, chosen
    d = router.route(q, lam=1000)
    assert chosen not in router.llms and d.llm in router.llms
    assert {c.llm for c in d.candidates} == set(router.llms)  # decided on the new pool
    logged = router.log.get_decision(d.decision_id)
    assert logged is not None and logged.llm == d.llm


class _PausingLog(MemoryLog):
    """A log whose next ``feedback()`` read (the refit's) stops before or after reading."""

    def __init__(self) -> None:
        super().__init__()
        self.pause: str | None = None  # "before" or "after" the read
        self.paused = threading.Event()
        self.resume = threading.Event()

    def _hold(self, when: str) -> None:
        if self.pause == when:
            self.pause = None
            self.paused.set()
            assert self.resume.wait(timeout=60)

    def feedback(self, *, since_seq: int = 0) -> Iterator[LoggedFeedback]:
        self._hold("before")
        rows = list(super().feedback(since_seq=since_seq))
        self._hold("after")
        yield from rows


def _paused_router() -> MixLLMRouter:
    router = _router(log=_PausingLog(), online_ridge=1.0)
    for i, q in enumerate(QUERIES[300:360]):
        router.feedback(router.route(q, lam=5).decision_id, score=float(i % 3 == 0))
    return router


def _heads(router: MixLLMRouter) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    state = router.get_state().heads
    assert state is not None
    return state.A_inv, state.b, state.n_updates


@pytest.mark.parametrize("when", ["before", "after"])
def test_feedback_during_a_refit_neither_waits_nor_is_lost(when: str) -> None:
    # ``after``: the refit has read the log; its feedback must count as given after the refit
    # (applied again to the fresh heads). ``before``: the refit reads it as training data.
    live, reference = _paused_router(), _paused_router()
    late_live = [live.route(q, lam=5) for q in QUERIES[360:380]]
    late_ref = [reference.route(q, lam=5) for q in QUERIES[360:380]]
    assert [d.llm for d in late_live] == [d.llm for d in late_ref]
    scores = [float(i % 2) for i in range(len(late_live))]
    log = live.log
    assert isinstance(log, _PausingLog)
    log.pause = when
    result: list[dict[str, int]] = []
    refit = threading.Thread(target=lambda: result.append(live.refit(guard=None)))
    refit.start()
    try:
        assert log.paused.wait(timeout=60)
        giver = threading.Thread(
            target=lambda: [
                live.feedback(d.decision_id, score=s) for d, s in zip(late_live, scores)
            ]
        )
        giver.start()
        giver.join(timeout=10)
        assert not giver.is_alive(), "feedback waited for the refit"
    finally:
        log.resume.set()
        refit.join(timeout=120)
    assert not refit.is_alive() and result

    def give_reference() -> None:
        for d, s in zip(late_ref, scores):
            reference.feedback(d.decision_id, score=s)

    if when == "before":
        give_reference()
    expected = reference.refit(guard=None)
    if when == "after":
        give_reference()
    assert result[0] == expected
    for got, want in zip(_heads(live), _heads(reference)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    if when == "after":  # every late feedback is in the fresh heads
        assert int(_heads(live)[2].sum()) == len(late_live)
    qs = QUERIES[400:440]
    np.testing.assert_allclose(
        live.predict(qs)["quality"], reference.predict(qs)["quality"], rtol=0, atol=1e-9
    )
    assert live.get_state().feedback_seq == reference.get_state().feedback_seq


def test_a_refit_keeps_what_a_pool_change_during_it_decided() -> None:
    router = _paused_router()
    log = router.log
    assert isinstance(log, _PausingLog)
    log.pause = "after"
    result: list[dict[str, int]] = []
    refit = threading.Thread(target=lambda: result.append(router.refit(guard=None)))
    refit.start()
    try:
        assert log.paused.wait(timeout=60)
        router.remove_llm("frontier")
        router.add_llm(WORLD.specs["frontier"])  # back, untrained: its refit is stale
        router.remove_llm("mid-70b")
    finally:
        log.resume.set()
        refit.join(timeout=120)
    assert result and not {"frontier", "mid-70b"} & set(result[0])
    assert router.llms == ["tiny-7b", "coder-34b", "math-pro", "frontier"]
    assert router.model.pool.quality["frontier"].n_samples_ == 0  # the prior it came back with
    refit_llms = set(result[0])
    assert refit_llms and all(router.model.pool.quality[n].n_samples_ > 300 for n in refit_llms)
    router.route(QUERIES[0])


def _route_latencies_during(
    router: MixLLMRouter, action: Callable[[], object]
) -> tuple[list[float], float]:
    """Latencies of routes made 0.5 ms apart (a busy service, not a spin loop) while
    ``action`` runs, and how long it took."""
    latencies: list[float] = []
    stop = threading.Event()

    def work() -> None:
        i = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            router.route(QUERIES[i % len(QUERIES)])
            latencies.append(time.perf_counter() - t0)
            i += 1
            time.sleep(0.0005)

    thread = threading.Thread(target=work)
    thread.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    action()
    took = time.perf_counter() - t0
    stop.set()
    thread.join(timeout=60)
    return latencies, took


def test_a_route_never_waits_for_a_refit_held_in_the_middle() -> None:
    # the refit stops for 1 s after reading the log; the old router held its lock meanwhile
    router = _paused_router()
    log = router.log
    assert isinstance(log, _PausingLog)
    log.pause = "after"

    def hold() -> None:
        assert log.paused.wait(timeout=60)
        time.sleep(1.0)
        log.resume.set()

    holder = threading.Thread(target=hold)
    holder.start()
    latencies, refit_s = _route_latencies_during(router, router.refit)
    holder.join(timeout=60)
    assert refit_s >= 1.0 and len(latencies) >= 50
    assert max(latencies) < 0.5, (max(latencies), statistics.median(latencies))


def test_a_route_never_waits_for_a_refit_that_trains() -> None:
    # 3,000 feedback rows to retrain on; routes go on meanwhile at their usual speed (a route
    # is ~0.5 ms; the margin covers GIL hand-overs and garbage collection on a shared CPU)
    router = _router()
    for i in range(3000):
        d = router.route(QUERIES[i % len(QUERIES)])
        router.feedback(d.decision_id, score=float(i % 3 == 0))
    latencies, refit_s = _route_latencies_during(router, router.refit)
    assert len(latencies) >= 10
    assert max(latencies) < max(0.1, refit_s / 2), (max(latencies), refit_s)


def test_training_sets_are_the_llms_own_columns() -> None:
    data = WORLD.subset(range(300))
    state = _router().get_state()
    for llm in state.llms:
        assert llm.train is not None
        np.testing.assert_array_equal(llm.train[1], data.quality[:, data.llms.index(llm.name)])
        assert llm.train[0] is state.llms[0].train[0]  # type: ignore[index]  # X shared


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("latency_s", math.nan, "finite number >= 0"),
        ("latency_s", -0.5, "finite number >= 0"),
        ("latency_s", math.inf, "finite number >= 0"),
        ("latency_s", "1s", "finite number >= 0"),
        ("cost", math.inf, "finite number >= 0"),
        ("cost", math.nan, "finite number >= 0"),
        ("cost", -1e-6, "finite number >= 0"),
        ("cost", True, "finite number >= 0"),
        ("input_tokens", -1, "int >= 0"),
        ("input_tokens", 2.5, "int >= 0"),
        ("output_tokens", 3.0, "int >= 0"),
        ("output_tokens", True, "int >= 0"),
    ],
)
def test_a_refused_outcome_writes_nothing(field: str, value: object, allowed: str) -> None:
    router = MixLLMRouter(["a", "b"], encoder=HashingEncoder())
    d = router.route("hello")
    left = router.budget.remaining()
    with pytest.raises(ConfigError, match=f"{field} must be .*{allowed}.*got {value!r}"):
        router.record_outcome(d.decision_id, **{field: value})  # type: ignore[arg-type]
    assert router.log.rows()["outcomes"] == [] and router.budget.remaining() == left


def test_an_outcome_for_an_unknown_decision_is_refused() -> None:
    router = MixLLMRouter(["a", "b"], encoder=HashingEncoder())
    with pytest.raises(FeedbackError, match="Unknown decision id 'nope'"):
        router.record_outcome("nope", latency_s=0.1, cost=0.01)
    assert router.log.rows()["outcomes"] == []
    d = router.route("hello")
    router.record_outcome(
        d.decision_id,
        latency_s=np.float64(0.25),
        cost=np.float32(0.5),
        input_tokens=np.int64(12),
        output_tokens=0,
    )
    (row,) = router.log.rows()["outcomes"]
    assert (row["latency_s"], row["cost"], row["input_tokens"]) == (0.25, 0.5, 12)
    assert type(row["input_tokens"]) is int
