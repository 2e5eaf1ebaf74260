"""Invariants of a routing decision: it depends on the query and the router state only.

A decision must not depend on which other queries share its batch (the async adapters batch
unrelated concurrent calls), and every field of ``LLMSpec`` must act on it.
"""

from __future__ import annotations

import numpy as np
import pytest

from mixllm_core import DecisionPolicy, LLMSpec, MixLLMRouter
from mixllm_core.errors import EmptyPoolError
from mixllm_core.latency import LatencyTracker
from mixllm_core.testing import FakeClock, HashingEncoder, make_synthetic_world

README_PRICES = [LLMSpec("small", 0.15, 0.6), LLMSpec("large", 2.5, 10.0)]
LONG = "Summarise the following report. " + "The quarterly numbers grew again. " * 3000


def _cold(lam: float = 2.0) -> MixLLMRouter:
    return MixLLMRouter(README_PRICES, encoder=HashingEncoder(), policy=DecisionPolicy(lam=lam))


def _fitted(seed: int) -> MixLLMRouter:
    data = make_synthetic_world(300, seed=seed)
    return MixLLMRouter(encoder=HashingEncoder(), seed=seed).fit(data)


def _fitted_without_costs(seed: int) -> MixLLMRouter:
    """Fitted on quality only: the cost scale comes from the pool's prices, as for a cold router."""
    data = make_synthetic_world(300, seed=seed)
    data.cost = None
    data.input_tokens = data.output_tokens = None
    return MixLLMRouter(encoder=HashingEncoder(), seed=seed).fit(data)


def _breakdown(decision) -> list[tuple[str, float, float, bool]]:
    """Per candidate (name, score, cost, eligible), scores rounded past float32 matmul noise
    (BLAS sums a batch in another order than a single row: ~1e-7)."""
    return [(c.llm, round(c.score, 5), round(c.cost, 12), c.eligible) for c in decision.candidates]


@pytest.mark.parametrize("lam", [0.2, 0.5, 1.0, 2.0, 2.3])
def test_a_cold_routers_choice_does_not_depend_on_its_batch(lam: float) -> None:
    # The defect: the cost reference was the largest predicted cost in the batch, so a long
    # prompt in the same batch rescaled every other query's costs (λ in 0.15–2.33 flipped).
    router = _cold(lam)
    q = "Say hi to the team."
    alone = router.route(q)
    batched = router.route_batch([q, LONG])[0]
    assert batched.llm == alone.llm
    assert _breakdown(batched) == _breakdown(alone)


@pytest.mark.parametrize(
    "make", [lambda s: _cold(2.0), _fitted, _fitted_without_costs], ids=["cold", "fit", "nocost"]
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_route_equals_route_batch_for_any_companions(make, seed: int) -> None:
    router = make(seed)
    rng = np.random.default_rng(seed)
    world = make_synthetic_world(60, seed=100 + seed)
    for lam in (0.0, 0.5, 2.0, 10.0):
        router.policy = DecisionPolicy(lam=lam)
        for _ in range(5):
            q = str(world.queries[int(rng.integers(len(world)))])
            others = [str(world.queries[int(i)]) for i in rng.integers(len(world), size=4)]
            others.append(LONG[: int(rng.integers(10, len(LONG)))])
            alone = router.route(q)
            in_batch = router.route_batch([*others[:2], q, *others[2:]])[2]
            assert _breakdown(in_batch) == _breakdown(alone)
            assert in_batch.llm == alone.llm


def test_the_cost_reference_is_fixed_state_not_an_input() -> None:
    router = _cold()
    before = router.c_ref()
    router.route_batch([LONG, "short"])
    assert router.c_ref() == before == LLMSpec("large", 2.5, 10.0).cost(100, 200)
    fitted = _fitted(0)
    assert fitted.c_ref() == fitted.c_ref_  # the largest mean training cost


def test_max_concurrency_reaches_the_trackers_expected_wait() -> None:
    clock = FakeClock()
    tracker = LatencyTracker(clock)
    specs = [LLMSpec("pooled", 1.0, 1.0, max_concurrency=8), LLMSpec("single", 1.0, 1.0)]
    router = MixLLMRouter(specs, encoder=HashingEncoder(), tracker=tracker)
    for _ in range(3):
        tracker.start("pooled")
        tracker.start("single")
    waits = {c.llm: c.wait_s for c in router.route("hello").candidates}
    # 8 slots, 3 busy: a new call is served at once; 1 slot (unlimited = queue), 3 busy: 3 s
    assert waits == {"pooled": 0.0, "single": 3.0}
    router.add_llm(LLMSpec("late", 1.0, 1.0, max_concurrency=2))
    tracker.start("late")
    tracker.start("late")
    assert {c.llm: c.wait_s for c in router.route("hello").candidates}["late"] == 0.5
    router.remove_llm("late")
    tracker.start("late")
    assert tracker.expected_wait("late") == 3.0  # the limit went with the LLM


def test_a_busy_free_llm_keeps_traffic_under_the_latency_penalty() -> None:
    tracker = LatencyTracker(FakeClock())
    specs = [LLMSpec("big-pool", 1.0, 1.0, max_concurrency=8), LLMSpec("other", 1.0, 1.0)]
    policy = DecisionPolicy(lam=1.0, beta=1.0, gamma=1.0, tau=2.0, xi=1.0)
    router = MixLLMRouter(specs, encoder=HashingEncoder(), tracker=tracker, policy=policy)
    for _ in range(3):
        tracker.start("big-pool")
    d = router.route("hello")
    assert all(c.eligible for c in d.candidates)
    assert {c.llm: c.wait_s for c in d.candidates}["big-pool"] == 0.0


def test_a_prompt_beyond_a_context_window_makes_that_llm_ineligible() -> None:
    specs = [
        LLMSpec("short-ctx", 0.1, 0.1, context_window=8_000),
        LLMSpec("long-ctx", 5.0, 15.0, context_window=128_000),
    ]
    router = MixLLMRouter(specs, encoder=HashingEncoder(), policy=DecisionPolicy(lam=0.0))
    prompt = "word " * 20_700  # ~25,875 estimated tokens
    d = router.route(prompt)
    assert d.llm == "long-ctx"  # λ=0 would pick the cheap one if it could take the prompt
    short = next(c for c in d.candidates if c.llm == "short-ctx")
    assert not short.eligible
    assert "context window 8000" in short.reason and "25875 tokens" in short.reason
    assert router.route("a short question").llm == "short-ctx"


def test_a_prompt_that_fits_no_context_window_is_refused_with_the_reason() -> None:
    router = MixLLMRouter(
        [LLMSpec("a", context_window=100), LLMSpec("b", context_window=200)],
        encoder=HashingEncoder(),
    )
    with pytest.raises(EmptyPoolError, match=r"context window 100.*context window 200"):
        router.route("x" * 4_000)
