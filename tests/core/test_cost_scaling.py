"""Predicted cost follows the prompt: input tokens × input price + predicted output × output price."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mixllm_core import LLMSpec, MixLLMRouter
from mixllm_core.data import RoutingData
from mixllm_core.experiments.synthetic import make_synthetic_world
from mixllm_core.predictors import CostPredictor, PredictorBank, QualityPredictor, infer_prices
from mixllm_core.testing import HashingEncoder
from mixllm_core.text import estimate_tokens

LONG = "word " * 20_000  # about 25,000 tokens
SHORT = "What is 2+2?"
#: Allowed relative error of a long prompt's predicted cost against input tokens × price (the
#: predicted output part of a few hundred tokens is < 5% of it for every synthetic LLM).
TOLERANCE = 0.05


@pytest.fixture(scope="module")
def world() -> RoutingData:
    return make_synthetic_world(n_queries=300, seed=3)


def _fit(data: RoutingData) -> MixLLMRouter:
    return MixLLMRouter(encoder=HashingEncoder()).fit(data)


def _long_and_short(router: MixLLMRouter) -> tuple[np.ndarray, np.ndarray]:
    cost = np.asarray(router.predict([LONG, SHORT])["cost"])
    return cost[0], cost[1]


def _check_scales(router: MixLLMRouter, data: RoutingData) -> None:
    long, short = _long_and_short(router)
    tokens = estimate_tokens(LONG)
    for j, name in enumerate(router.llms):
        price = data.specs[name].input_price  # the synthetic list price
        assert long[j] == pytest.approx(tokens * price / 1e6, rel=TOLERANCE), name
        assert long[j] > 20 * short[j], name


def test_priced_data_with_output_tokens(world: RoutingData) -> None:
    _check_scales(_fit(world), world)


def test_prices_and_costs_without_output_tokens_back_out_the_output(world: RoutingData) -> None:
    data = replace(world, output_tokens=None, input_tokens=None)
    router = _fit(data)
    _check_scales(router, data)
    state = router.model.pool.cost["frontier"].get_state()
    assert (state.mode, state.input_price, state.output_price) == ("tokens", 10.0, 30.0)
    # the backed-out output tokens are the true ones, so their mean is learned
    F = router.features(data.queries)[1]
    predicted = router.model.pool.cost["frontier"].predict(F)
    assert predicted.mean() == pytest.approx(data.cost[:, 4].mean(), rel=0.02)


def test_costs_without_prices_infer_the_list_prices(world: RoutingData) -> None:
    # RouterBench-like: per-call costs and output tokens, no price list
    data = replace(world, input_tokens=None, specs={})
    router = _fit(data)
    for name, (_, p_in, p_out, *_) in zip(world.llms, _synthetic_prices(world)):
        state = router.model.pool.cost[name].get_state()
        assert state.input_price == pytest.approx(p_in, rel=1e-6)
        assert state.output_price == pytest.approx(p_out, rel=1e-6)
    _check_scales(router, world)


def test_costs_alone_still_scale_with_the_prompt(world: RoutingData) -> None:
    data = replace(world, input_tokens=None, output_tokens=None, specs={})
    long, short = _long_and_short(_fit(data))
    assert (long > 5 * short).all()


def test_input_price_alone_is_not_taken_as_a_list_price(world: RoutingData) -> None:
    # the RouterBench loader gives effective per-input-token prices with no output price
    specs = {n: LLMSpec(n, input_price=123.0) for n in world.llms}
    router = _fit(replace(world, input_tokens=None, specs=specs))
    assert router.model.pool.cost["frontier"].get_state().input_price == pytest.approx(10.0)


def _synthetic_prices(data: RoutingData) -> list[tuple[str, float, float]]:
    return [(n, data.specs[n].input_price, data.specs[n].output_price) for n in data.llms]


def test_infer_prices_skips_nan_rows_and_needs_one_row() -> None:
    cost = np.array([0.001, np.nan, 0.002])
    tin = np.array([100.0, 100.0, 200.0])
    p_in, p_out = infer_prices(cost, tin)
    assert p_in == pytest.approx(10.0) and p_out == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(Exception, match="at least one row"):
        infer_prices(np.array([np.nan]), np.array([1.0]))


def test_the_saved_router_keeps_the_scaling(world: RoutingData, tmp_path: Path) -> None:
    router = _fit(replace(world, input_tokens=None, specs={}))
    loaded = MixLLMRouter.load(router.save(tmp_path / "r"), encoder=HashingEncoder())
    np.testing.assert_allclose(_long_and_short(loaded), _long_and_short(router))


def test_an_older_regress_cost_model_still_predicts() -> None:
    # routers saved before the token-based cost model hold "regress" cost states
    F = np.c_[np.log1p(np.array([10.0, 1000.0])), np.zeros((2, 2))]
    old = CostPredictor("regress").fit(F, np.array([0.001, 0.002]))
    again = CostPredictor.from_state(old.get_state())
    bank = PredictorBank([QualityPredictor.prior(0.5)], [again])
    np.testing.assert_allclose(bank.predict_cost(F)[:, 0], old.predict(F))
