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
