from __future__ import annotations

import numpy as np
import pytest

from mixllm_core import ConfigError, DecisionPolicy
from mixllm_core.decision import BudgetTracker, DecisionMaker
from mixllm_core.errors import EmptyPoolError
from mixllm_core.testing import FakeClock

NAMES = ["cheap", "mid", "pricey"]


def test_policy_validates() -> None:
    with pytest.raises(ConfigError, match="lam"):
        DecisionPolicy(lam=-1)
    with pytest.raises(ConfigError, match="tau"):
        DecisionPolicy(tau=float("nan"))
    assert DecisionPolicy(lam=3).quality_weight == pytest.approx(0.75)


def test_raising_cost_weight_never_raises_expected_cost() -> None:
    rng = np.random.default_rng(0)
    Q = rng.random((500, 6))
    C = rng.random((500, 6)) * np.linspace(0.1, 1, 6)
    maker = DecisionMaker(seed=0)
    rows = np.arange(500)
    costs, quals = [], []
    for lam in [0.0, 0.1, 0.5, 1, 2, 5, 10, 100]:  # larger λ = smaller cost weight
        idx = maker.choose_batch(maker.scores(Q, C, 1.0, policy=DecisionPolicy(lam=lam)))
        costs.append(C[rows, idx].mean())
        quals.append(Q[rows, idx].mean())
    assert all(b >= a - 1e-12 for a, b in zip(costs, costs[1:]))
    assert all(b >= a - 1e-12 for a, b in zip(quals, quals[1:]))


def test_hard_constraints_filter_before_argmax() -> None:
    maker = DecisionMaker(DecisionPolicy(lam=100, max_cost_per_query=0.5))
    q, c = np.array([0.2, 0.6, 0.9]), np.array([0.1, 0.4, 1.0])
    d = maker.decide(NAMES, q, c, 1.0)
    assert d.llm == "mid"
    pricey = next(x for x in d.candidates if x.llm == "pricey")
    assert not pricey.eligible and "max_cost_per_query" in pricey.reason
    d = maker.decide(NAMES, q, c, 1.0, budget_left=0.2)
    assert d.llm == "cheap"
    d = maker.decide(
        NAMES, q, c, 1.0, available=np.array([True, False, True]), policy=DecisionPolicy(lam=100)
    )
    assert d.llm == "pricey"
    d = maker.decide(NAMES, q, c, 1.0, budget_left=0.01)
    assert d.llm == "cheap" and "constraints" in d.fallback
    with pytest.raises(EmptyPoolError):
        maker.decide(NAMES, q, c, 1.0, available=np.zeros(3, bool))


def test_time_limit_and_latency_penalty() -> None:
    q, c = np.array([0.5, 0.9]), np.array([0.1, 0.1])
    maker = DecisionMaker(DecisionPolicy(lam=10, tau=2.0))
    d = maker.decide(["a", "b"], q, c, 1.0, wait=np.array([0.0, 3.0]), service=np.array([1.0, 1.0]))
    assert d.llm == "a"
    penalised = DecisionMaker(DecisionPolicy(lam=10, beta=1.0, gamma=1.0, xi=1.0, tau=1.0))
    assert penalised.decide(["a", "b"], q, c, 1.0, wait=np.array([0.0, 0.0])).llm == "b"
    assert penalised.decide(["a", "b"], q, c, 1.0, wait=np.array([0.0, 4.0])).llm == "a"


def test_ties_are_broken_by_the_seed() -> None:
    scores = np.zeros((200, 4))
    a = DecisionMaker(seed=7).choose_batch(scores)
    b = DecisionMaker(seed=7).choose_batch(scores)
    c = DecisionMaker(seed=8).choose_batch(scores)
    assert (a == b).all() and not (a == c).all()
    assert set(a) == {0, 1, 2, 3}


def test_budget_tracker_rolls_over_periods() -> None:
    clock = FakeClock()
    budget = BudgetTracker(1.0, period_s=10, clock=clock)
    budget.charge(0.7)
    assert budget.remaining() == pytest.approx(0.3)
    clock.advance(10)
    assert budget.remaining() == pytest.approx(1.0)


def test_break_even_names_the_lambda_at_which_each_candidate_takes_over() -> None:
    # on quality and cost alone (α = 0, no waits): just past λ* the other LLM is chosen, just
    # before it the first one stays; "never"/"always" hold at every λ
    rng = np.random.default_rng(7)
    checked = {"above": 0, "below": 0}
    for _ in range(200):
        q, c = rng.uniform(0, 1, 2), rng.uniform(0.01, 1, 2)
        lam = float(rng.uniform(0.1, 10))
        names = ["a", "b"]
        d = DecisionMaker(DecisionPolicy(lam=lam, alpha=0.0)).decide(names, q, c, 1.0)
        other = "b" if d.llm == "a" else "a"
        kind, star = d.break_even()[other]
        for probe in (0.0, 0.5 * lam, 2 * lam, 50.0):
            at = DecisionMaker(DecisionPolicy(lam=probe, alpha=0.0)).decide(names, q, c, 1.0)
            if kind == "never":
                assert at.llm == d.llm
            elif kind in ("above", "below") and abs(probe - star) > 1e-6:
                wins = probe > star if kind == "above" else probe < star
                assert (at.llm == other) == wins, (kind, star, probe, q, c)
                checked[kind] += 1
    assert min(checked.values()) > 50  # both directions were exercised


def test_break_even_explains_why_a_cheap_llm_keeps_winning() -> None:
    maker = DecisionMaker(DecisionPolicy(lam=1.0, alpha=0.0))
    d = maker.decide(["small", "large"], np.array([0.2, 0.9]), np.array([0.05, 0.95]), 1.0)
    assert d.llm == "small" and d.c_ref == 1.0
    kind, star = d.break_even()["large"]
    assert kind == "above" and abs(star - 0.9 / 0.7) < 1e-6  # 1.29 > λ = 1: large cannot win
    assert d.to_dict()["c_ref"] == 1.0
