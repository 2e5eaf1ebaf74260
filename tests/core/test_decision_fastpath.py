"""The vectorised decision path equals a straightforward per-candidate computation.

``MixLLMRouter._decide`` and ``DecisionMaker.decide`` work on arrays (context windows per pool,
the latency tracker's readings for all names at once, a candidate breakdown built on first
read). Here every decision of a seeded synthetic world — with exclusions, prompts too long for
some context windows, a cost cap, a spent budget, a time limit, a latency penalty and LLMs
with calls in flight — is recomputed the plain way, one candidate at a time, and must match:
same LLM, same scores (to 1e-12), same propensity, same candidate table, same fallback.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
from collections.abc import Sequence

import numpy as np
import pytest

from mixllm_core import CandidateScore, DecisionPolicy, LLMSpec, MixLLMRouter
from mixllm_core.decision import DecisionMaker, RoutingDecision, choice_probabilities
from mixllm_core.latency import LatencyTracker
from mixllm_core.log import SQLiteLog
from mixllm_core.testing import FakeClock, HashingEncoder, make_synthetic_world
from mixllm_core.text import estimate_tokens

WINDOWS = {"tiny-7b": 300, "coder-34b": None, "mid-70b": 2_000, "math-pro": None}
EXTRA = [LLMSpec("cold-a", 0.2, 0.4, context_window=120), LLMSpec("cold-b", 5.0, 15.0)]


def _reference(
    names: Sequence[str],
    quality: np.ndarray,
    cost: np.ndarray,
    uncertainty: np.ndarray,
    c_ref: float,
    policy: DecisionPolicy,
    *,
    tracker: LatencyTracker,
    specs: dict[str, LLMSpec],
    exclude: frozenset[str],
    input_tokens: float,
    budget_left: float,
) -> tuple[list[CandidateScore], np.ndarray, int | None, str]:
    """The decision rule written out per candidate: (table, choice probabilities, the index a
    greedy rule takes or None on a fallback, fallback text)."""
    p = policy
    rows: list[CandidateScore] = []
    expected, reasons, scores = [], [], []
    for i, n in enumerate(names):
        w = tracker.expected_wait(n)
        s = p.lam / (1 + p.lam) * quality[i] - 1 / (1 + p.lam) * cost[i] / max(c_ref, 1e-12)
        if p.alpha:
            s = s + p.alpha * uncertainty[i]
        if p.beta:
            tau = p.tau if p.tau is not None else 0.0
            s = s - p.beta * math.exp(min(p.gamma * (w - p.xi * tau), 50.0))
        t = w + (tracker.service_time(n) if p.tau is not None else 0.0)
        window = specs[n].context_window
        if window is not None and input_tokens > window:
            why = f"prompt of ~{input_tokens:.0f} tokens > context window {window}"
        elif n in exclude:
            why = "unavailable"
        elif p.max_cost_per_query is not None and cost[i] > p.max_cost_per_query:
            why = f"cost {cost[i]:.3g} > max_cost_per_query {p.max_cost_per_query:.3g}"
        elif cost[i] > budget_left:
            why = f"cost {cost[i]:.3g} > budget left {budget_left:.3g}"
        elif p.tau is not None and t > p.tau:
            why = f"expected time {t:.3g}s > tau {p.tau:.3g}s"
        else:
            why = ""
        expected.append(t)
        reasons.append(why)
        scores.append(float(s))
        rows.append(
            CandidateScore(
                n, float(quality[i]), float(cost[i]), float(uncertainty[i]), w, float(s), not why
            )
        )
        rows[-1] = dataclasses.replace(rows[-1], reason=why)
    eligible = np.array([not r for r in reasons])
    if eligible.any():
        best = max((s, -i) for i, s in enumerate(scores) if eligible[i])
        return rows, choice_probabilities(np.array(scores), eligible, p), -best[1], ""
    timed = [i for i, r in enumerate(reasons) if r.startswith("expected time")]
    if timed:
        i = min(timed, key=lambda j: expected[j])
        return (
            rows,
            eligible * 0.0,
            i,
            f"no candidate fits tau; chose the fastest expected ({names[i]})",
        )
    open_ = [i for i, r in enumerate(reasons) if not r.startswith("prompt") and r != "unavailable"]
    i = min(open_, key=lambda j: cost[j])
    return (
        rows,
        eligible * 0.0,
        i,
        f"no candidate met the constraints; chose the cheapest ({names[i]})",
    )


def _world_router(
    policy: DecisionPolicy, clock: FakeClock, log: SQLiteLog | None = None
) -> MixLLMRouter:
    data = make_synthetic_world(240, seed=3)
    specs = [
        dataclasses.replace(
            data.specs[n],
            context_window=WINDOWS.get(n),
            max_concurrency=(2 if n == "math-pro" else None),
        )
        for n in data.llms
    ]
    router = MixLLMRouter(
        specs,
        encoder=HashingEncoder(),
        policy=policy,
        seed=5,
        clock=clock,
        log=log,
    )
    router.fit(data)
    for spec in EXTRA:
        router.add_llm(spec)
    tracker = router.tracker
    tracker.observe_service("frontier", 3.0)
    tracker.observe_service("math-pro", 1.5)
    for llm in ("frontier", "frontier", "math-pro", "math-pro", "math-pro", "cold-b"):
        tracker.start(llm)
    return router


def _queries(seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    words = ["solve", "integral", "python", "bug", "poem", "history", "proof", "sort", "list"]
    out = []
    for _ in range(30):
        n = int(rng.choice([3, 40, 200, 900, 2500]))  # some past the 120/300/2,000-token windows
        out.append(" ".join(rng.choice(words, n)))
    return out


POLICIES = {
    "plain": DecisionPolicy(lam=1.5),
    "everything": DecisionPolicy(
        lam=2.0, alpha=0.05, beta=0.02, gamma=1.5, xi=0.5, tau=4.0, max_cost_per_query=0.004
    ),
    "budget": DecisionPolicy(lam=3.0, alpha=0.1, budget=0.01, budget_period_s=60.0),
    "tight-tau": DecisionPolicy(lam=1.0, beta=0.1, tau=0.5),
    "softmax": DecisionPolicy(lam=1.0, alpha=0.02, explore="softmax", temperature=0.05),
    "epsilon": DecisionPolicy(lam=1.0, beta=0.01, explore="epsilon", epsilon=0.3, tau=5.0),
}


@pytest.mark.parametrize("which", list(POLICIES))
def test_every_decision_equals_the_per_candidate_computation(which: str) -> None:
    policy = POLICIES[which]
    router = _world_router(policy, FakeClock())
    if policy.budget is not None:
        router.budget.charge(0.0085)  # some LLMs now cost more than the budget left
    excludes = [frozenset(), frozenset({"frontier"}), frozenset({"tiny-7b", "mid-70b"})]
    reasons_seen: set[str] = set()
    for k, q in enumerate(_queries(seed=len(which))):
        exclude = excludes[k % 3]
        pred = router.predict([q])
        budget_left = router.budget.remaining()
        d = router.route(q, exclude=exclude)
        rows, probs, greedy_idx, fallback = _reference(
            router.llms,
            pred["quality"][0],
            pred["cost"][0],
            pred["uncertainty"][0],
            router.c_ref(),
            policy,
            tracker=router.tracker,
            specs=dict(router.specs),
            exclude=exclude,
            input_tokens=estimate_tokens(q),
            budget_left=budget_left,
        )
        got = d.candidates
        assert [c.llm for c in got] == [r.llm for r in rows]
        for c, r in zip(got, rows):
            assert (c.eligible, c.reason) == (r.eligible, r.reason)
            for f in ("quality", "cost", "uncertainty", "wait_s", "score"):
                assert getattr(c, f) == pytest.approx(getattr(r, f), rel=0, abs=1e-12), f
            reasons_seen.add(r.reason.split(" ")[0] if r.reason else "")
        assert d.fallback == fallback
        i = router.llms.index(d.llm)
        if fallback or policy.explore == "greedy":
            assert i == greedy_idx
        assert d.propensity == pytest.approx(1.0 if fallback else probs[i], rel=0, abs=1e-12)
        assert d.predicted_cost == got[i].cost and d.predicted_quality == got[i].quality
    if which == "everything":  # the world exercises every kind of constraint
        assert {"", "prompt", "unavailable", "cost", "expected"} <= reasons_seen


def test_latency_readings_follow_every_change() -> None:
    clock = FakeClock()
    t = LatencyTracker(clock)
    names = ["a", "b", "c"]

    def plain() -> list[float]:
        return [t.expected_wait(n) for n in names]

    assert t.expected_waits(names).tolist() == plain() == [0.0, 0.0, 0.0]
    token = t.start("a")
    t.start("a")
    t.start("b")
    assert t.expected_waits(names).tolist() == plain() == [2.0, 1.0, 0.0]
    t.set_concurrency("a", 2)
    assert t.expected_waits(names).tolist() == plain() == [0.5, 1.0, 0.0]
    clock.advance(3.0)
    t.finish(token)
    t.observe_service("c", 0.25)
    assert t.expected_waits(names).tolist() == plain()
    assert t.service_times(names).tolist() == [t.service_time(n) for n in names] == [3.0, 1.0, 0.25]
    t.default_service_s = 2.0
    assert t.expected_waits(names).tolist() == plain() == [0.0, 2.0, 0.0]
    with pytest.raises(ValueError):
        t.expected_waits(names)[0] = 1.0  # read-only: a reading is shared


def test_a_tracker_that_reads_differently_is_asked_per_llm() -> None:
    class Busy(LatencyTracker):
        def in_flight(self, llm: str) -> int:
            return 7 if llm == "b" else 0

    assert Busy().expected_waits(["a", "b"]).tolist() == [0.0, 7.0]


def _maker_decision() -> RoutingDecision:
    maker = DecisionMaker(DecisionPolicy(lam=1.0, max_cost_per_query=0.5))
    q, c = np.array([0.4, 0.8, 0.9]), np.array([0.1, 0.3, 0.9])
    return maker.decide(["small", "mid", "large"], q, c, 1.0, wait=np.array([0.0, 1.0, 0.0]))


def test_the_breakdown_built_on_first_read_behaves_like_a_tuple() -> None:
    d = _maker_decision()
    assert d.chosen == CandidateScore("mid", 0.8, 0.3, 0.0, 1.0, d.chosen.score, True)
    assert (d.predicted_quality, d.predicted_cost) == (0.8, 0.3)
    rows = d.candidates
    assert isinstance(rows, tuple) and rows is d.candidates  # built once
    assert rows[2].reason == "cost 0.9 > max_cost_per_query 0.5" and not rows[2].eligible
    assert d.chosen == rows[1] and d.predicted_cost == rows[1].cost
    copy = dataclasses.replace(d)
    assert copy == d and copy.candidates == rows
    again = pickle.loads(pickle.dumps(_maker_decision()))
    assert again.candidates[0].llm == "small" and again.llm == "mid"
    assert json.loads(json.dumps(d.to_dict()))["candidates"][1]["llm"] == "mid"
    given = RoutingDecision("id", "x", (CandidateScore("x", 1.0, 0.0, 0.0, 0.0, 1.0, True),), 1.0)
    assert given.chosen.llm == "x" and given.predicted_quality == 1.0


def test_the_input_arrays_may_change_after_the_decision() -> None:
    maker = DecisionMaker(DecisionPolicy(lam=1.0))
    q, c = np.array([0.4, 0.8]), np.array([0.1, 0.3])
    d = maker.decide(["a", "b"], q, c, 1.0)
    q[:] = 0.0
    c[:] = 9.0
    assert [x.quality for x in d.candidates] == [0.4, 0.8]
    assert [x.cost for x in d.candidates] == [0.1, 0.3]


def test_the_log_still_gets_the_candidate_table(tmp_path) -> None:
    policy = POLICIES["everything"]
    router = _world_router(policy, FakeClock(), log=SQLiteLog(tmp_path / "log.sqlite"))
    d = router.route(_queries(seed=1)[2], exclude={"frontier"})
    (row,) = [r for r in router.log.rows()["decisions"] if r["decision_id"] == d.decision_id]
    stored = row["candidates"]
    assert json.loads(stored) == [dataclasses.asdict(c) for c in d.candidates]
    assert any(not c["eligible"] for c in json.loads(stored))
