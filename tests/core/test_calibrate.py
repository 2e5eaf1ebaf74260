"""``router.calibrate``: λ chosen on validation data meets a target cost or quality share."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mixllm_core import MixLLMRouter
from mixllm_core.calibration import pick_lambda
from mixllm_core.data import RoutingData
from mixllm_core.errors import ConfigError, DataFormatError
from mixllm_core.experiments.synthetic import make_synthetic_world
from mixllm_core.testing import HashingEncoder


@pytest.fixture(scope="module")
def parts() -> tuple[MixLLMRouter, RoutingData, RoutingData]:
    data = make_synthetic_world(n_queries=1500, seed=5)
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(data))
    train, val, test = (data.subset(r) for r in np.array_split(rows, 3))
    return MixLLMRouter(encoder=HashingEncoder()).fit(train), val, test


def _routed(router: MixLLMRouter, data: RoutingData, lam: float) -> tuple[float, float]:
    d = router.predict(data.queries)
    S = router.maker.scores(
        np.asarray(d["quality"]),
        np.asarray(d["cost"]),
        router.c_ref(),
        uncertainty=np.asarray(d["uncertainty"]),
        policy=replace(router.policy, lam=lam),
    )
    pick = S.argmax(axis=1)
    rows = np.arange(len(data))
    assert data.cost is not None
    return float(data.cost[rows, pick].mean()), float(data.quality[rows, pick].mean())


def test_target_cost_is_met_on_validation_and_holds_on_held_out_rows(parts) -> None:
    router, val, test = parts
    assert val.cost is not None
    target = 0.5 * float(val.cost.mean(axis=0).max())  # half the priciest LLM's mean cost
    result = router.calibrate(val, target_cost=target)
    assert result.met and result.cost <= target and result.target == "cost"
    held_out_cost, _ = _routed(router, test, result.lam)
    assert held_out_cost == pytest.approx(target, rel=0.2)  # margin measured: within ~5%
    assert router.policy.lam == 1.0  # not applied unless asked


def test_quality_share_is_reached_as_cheaply_as_the_grid_allows(parts) -> None:
    router, val, _ = parts
    result = router.calibrate(val, target_quality_share=0.95)
    best = float(val.quality.mean(axis=0).max())
    assert result.met and result.quality >= 0.95 * best
    assert result.target_value == pytest.approx(0.95 * best)
    cheaper = [c for lam, c, q in result.curve if q >= 0.95 * best and c < result.cost]
    assert not cheaper
    assert val.cost is not None
    assert result.cost < float(val.cost.mean(axis=0).max())  # cheaper than the priciest LLM


def test_apply_sets_the_policy(parts) -> None:
    _, val, _ = parts
    router = MixLLMRouter(encoder=HashingEncoder()).fit(val)
    result = router.calibrate(val, target_quality_share=0.9, apply=True)
    assert router.policy.lam == result.lam == router.maker.policy.lam


def test_an_unreachable_target_returns_the_closest_lambda(parts) -> None:
    router, val, _ = parts
    result = router.calibrate(val, target_cost=0.0)
    assert not result.met
    assert result.cost == min(c for _, c, _ in result.curve)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"target_cost": 1.0, "target_quality_share": 0.5},
        {"target_cost": -1.0},
        {"target_quality_share": 1.5},
        {"target_cost": float("nan")},
    ],
)
def test_bad_targets_are_refused(parts, kwargs) -> None:
    router, val, _ = parts
    with pytest.raises(ConfigError, match="target"):
        router.calibrate(val, **kwargs)


def test_data_without_a_pool_llm_is_refused(parts) -> None:
    router, val, _ = parts
    with pytest.raises(DataFormatError, match="no column"):
        router.calibrate(val.select_llms(val.llms[:2]), target_cost=1.0)


def test_pick_lambda_prefers_quality_under_the_cost_and_cost_over_the_quality() -> None:
    lams, costs, quals = [0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 2.0, 4.0], [0.5, 0.6, 0.7, 0.8]
    assert pick_lambda(lams, costs, quals, target_cost=2.5).lam == 2.0
    assert pick_lambda(lams, costs, quals, target_quality=0.6).lam == 2.0  # same cost, better
    assert pick_lambda(lams, [1.0, 2.0, 3.0, 4.0], quals, target_quality=0.6).lam == 1.0
    missed = pick_lambda(lams, costs, quals, target_quality=0.9)
    assert (missed.lam, missed.met) == (3.0, False)
    with pytest.raises(ConfigError, match="one non-empty length"):
        pick_lambda([0.0], [1.0, 2.0], [0.5], target_cost=1.0)


def test_cli_calibrate_prints_and_applies_lambda(parts, tmp_path, capsys) -> None:
    from mixllm_core.cli import main
    from tests.conftest import write_long_csv

    router, val, _ = parts
    saved = router.save(tmp_path / "r")
    csv = write_long_csv(val, tmp_path / "val.csv")
    assert val.cost is not None
    target = 0.5 * float(val.cost.mean(axis=0).max())
    args = ["calibrate", "--router", str(saved), "--data", str(csv), "--target-cost", str(target)]
    assert main([*args, "--apply"]) == 0
    out = capsys.readouterr().out
    assert "met" in out and "saved λ" in out
    lam = MixLLMRouter.load(saved).policy.lam
    assert lam == router.calibrate(val, target_cost=target).lam != 1.0
    assert main([*args[:-1], "0"]) == 1  # a zero budget cannot be met
    assert "NOT met" in capsys.readouterr().out
