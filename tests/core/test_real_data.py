"""Behaviour on real third-party routing data in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

import numpy as np
import pytest

from mixllm_core import MixLLMRouter, load_routing_data
from mixllm_core.experiments.replay import choose_indices
from mixllm_core.metrics import quality_at_cost
from mixllm_core.testing import HashingEncoder
from tests.conftest import LLMROUTER, ROUTERBENCH, require_shared

pytestmark = pytest.mark.real_data


def _curve(router, test, lambdas):
    p = router.predict(test.queries)
    rows = np.arange(len(test))
    pts = []
    for lam in lambdas:
        idx = choose_indices(router, p["quality"], p["cost"], lam)
        pts.append((test.cost[rows, idx].mean(), test.quality[rows, idx].mean()))
    return pts


@pytest.mark.slow
def test_routerbench_subset_routing_beats_random_and_cheap_llms_at_their_cost() -> None:
    data = load_routing_data(require_shared(ROUTERBENCH))
    assert len(data.llms) == 11 and len(data) == 2205  # 20 incomplete duplicate rows dropped
    train, test = data.train_test_split(seed=0)
    router = MixLLMRouter(encoder=HashingEncoder(256), quality_model="linear").fit(train)
    pts = _curve(router, test, [0, 0.5, 1, 2, 5, 10, 20, 100])
    costs, quals = [c for c, _ in pts], [q for _, q in pts]
    rows = np.arange(len(test))
    pick = np.random.default_rng(0).integers(0, len(test.llms), len(test))
    rand_cost, rand_quality = test.cost[rows, pick].mean(), test.quality[rows, pick].mean()
    # at the random router's cost, routing is far better (measured 0.82 vs 0.68)
    assert quality_at_cost(costs, quals, rand_cost) > rand_quality + 0.08
    # at a quarter of GPT-4's cost it keeps most of GPT-4's quality (measured 95.4%), more than
    # any single LLM that costs that little (the best, Yi-34B, 85.8%)
    gpt4 = test.llms.index("gpt-4-1106-preview")
    g_cost, g_quality = test.cost[:, gpt4].mean(), test.quality[:, gpt4].mean()
    at_quarter = quality_at_cost(costs, quals, 0.25 * g_cost) / g_quality
    cheap = test.cost.mean(axis=0) <= 0.25 * g_cost
    assert at_quarter > 0.92
    assert at_quarter > test.quality[:, cheap].mean(axis=0).max() / g_quality + 0.05


def test_llmrouter_prices_and_tasks_load() -> None:
    data = load_routing_data(require_shared(LLMROUTER))
    assert len(data.llms) == 9 and data.tasks is not None and len(set(data.tasks)) >= 14
    assert data.specs["gemma-2-9b-it"].input_price == pytest.approx(0.10)
    assert np.isfinite(data.cost).all() and (data.cost > 0).all()
    # each column is priced with its own LLM's prices (USD per million tokens)
    assert data.input_tokens is not None and data.output_tokens is not None
    price_in = np.array([data.specs[m].input_price for m in data.llms])
    price_out = np.array([data.specs[m].output_price for m in data.llms])
    expected = (data.input_tokens * price_in + data.output_tokens * price_out) / 1e6
    np.testing.assert_allclose(data.cost, expected, rtol=1e-9)
