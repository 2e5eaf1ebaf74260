"""Behaviour on real third-party routing data in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

import numpy as np
import pytest

from mixllm_core import MixLLMRouter, load_routing_data
from mixllm_core.experiments.replay import choose_indices
from mixllm_core.metrics import aiq
from mixllm_core.testing import HashingEncoder
from tests.conftest import LLMROUTER, ROUTERBENCH, require_shared


def _curve(router, test, lambdas):
    p = router.predict(test.queries)
    rows = np.arange(len(test))
    pts = []
    for lam in lambdas:
        idx = choose_indices(router, p["quality"], p["cost"], lam)
        pts.append((test.cost[rows, idx].mean(), test.quality[rows, idx].mean()))
    return pts


def test_routerbench_subset_routing_beats_random_and_stays_below_oracle() -> None:
    data = load_routing_data(require_shared(ROUTERBENCH))
    assert len(data.llms) == 11 and len(data) == 2205  # 20 incomplete duplicate rows dropped
    train, test = data.train_test_split(seed=0)
    router = MixLLMRouter(encoder=HashingEncoder(256), quality_model="linear").fit(train)
    pts = _curve(router, test, [0, 0.5, 1, 2, 5, 10, 20, 100])
    max_cost = test.cost.mean(axis=0).max()
    rng = np.random.default_rng(0)
    rand = test.quality[np.arange(len(test)), rng.integers(0, 11, len(test))].mean()
    ours = aiq([c for c, _ in pts], [q for _, q in pts], max_cost)
    oracle = test.quality.max(axis=1).mean()
    assert ours > rand + 0.05
    assert max(q for _, q in pts) <= oracle
    gpt4 = test.llms.index("gpt-4-1106-preview")
    assert min(c for c, _ in pts) < 0.1 * test.cost[:, gpt4].mean()


def test_llmrouter_prices_and_tasks_load() -> None:
    data = load_routing_data(require_shared(LLMROUTER))
    assert len(data.llms) == 9 and data.tasks is not None and len(set(data.tasks)) >= 14
    assert data.specs["gemma-2-9b-it"].input_price == pytest.approx(0.10)
    assert np.isfinite(data.cost).all() and (data.cost > 0).all()
