from __future__ import annotations

import pytest

from mixllm_core.metrics import aiq, cost_to_reach, hull_points, quality_at_cost


def test_hull_drops_dominated_and_decreasing_points() -> None:
    hull = hull_points([1, 2, 3, 4], [0.5, 0.55, 0.9, 0.8])
    assert hull.tolist() == [[1.0, 0.5], [3.0, 0.9]]


def test_aiq_by_hand() -> None:
    # hull (1, .5) → (3, .9), flat to 4; nothing below the cheapest point
    assert aiq([1, 3], [0.5, 0.9], 4) == pytest.approx((2 * 0.7 + 0.9) / 4)


def test_operating_points() -> None:
    assert quality_at_cost([1, 3], [0.5, 0.9], 2) == pytest.approx(0.7)
    assert quality_at_cost([1, 3], [0.5, 0.9], 0.5) == 0.0
    assert cost_to_reach([1, 3], [0.5, 0.9], 0.7) == pytest.approx(2.0)
    assert cost_to_reach([1, 3], [0.5, 0.9], 0.95) is None
