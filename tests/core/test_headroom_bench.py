"""benchmarks/headroom.py: the within-task AUC it reports, and its synthetic predictors (calibrated,
equal to the per-task mean at no signal, ranking better as the signal grows).

Synthetic 0/1 data only (no shared data, no router fits).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
from scipy.stats import norm

from mixllm_core.experiments.synthetic import make_synthetic_world
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def hr() -> ModuleType:
    return load_benchmark("headroom")


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    data = make_synthetic_world(1200, seed=0)
    return data.subset(np.arange(600)), data.subset(np.arange(600, 1200))


def test_within_task_auc_counts_pairs_per_task_and_llm(hr: ModuleType) -> None:
    Y = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    tasks = np.array(["a", "a", "b", "b"])
    assert hr.within_task_auc(Y, Y, tasks) == (1.0, 4)
    Q = np.array([[0.2, 0.9], [0.8, 0.1], [0.7, 0.5], [0.3, 0.5]])  # b/0 wrong, b/1 tied
    auc, pairs = hr.within_task_auc(Q, Y, tasks)
    assert pairs == 4 and auc == pytest.approx((1 + 1 + 0 + 0.5) / 4)
    assert hr.per_task_auc(Q, Y, tasks) == {"a": (1.0, 2), "b": (0.25, 2)}
    # pairs across tasks never count: a constant per task ranks nothing within one
    Qt = np.where(tasks[:, None] == "a", 0.9, 0.1) * np.ones((1, 2))
    assert hr.within_task_auc(Qt, Y, tasks)[0] == 0.5


def test_no_signal_is_the_task_mean(hr: ModuleType, world) -> None:  # type: ignore[no-untyped-def]
    fit, test = world
    Q = hr.signal_quality(fit, test, 0.0, seed=0)
    tasks, ftasks = np.array(test.tasks), np.array(fit.tasks)
    for t in np.unique(tasks):
        expected = fit.quality[ftasks == t].mean(axis=0)
        np.testing.assert_allclose(Q[tasks == t], np.tile(expected, ((tasks == t).sum(), 1)))


def test_signal_ranks_as_the_binormal_model_says(hr: ModuleType, world) -> None:  # type: ignore[no-untyped-def]
    fit, test = world
    tasks = np.array(test.tasks)
    aucs = []
    for d in (0.5, 1.5, 3.0):
        auc, _ = hr.within_task_auc(hr.signal_quality(fit, test, d, seed=1), test.quality, tasks)
        aucs.append(auc)
        # posterior means are monotone in z, so the AUC is that of z: Φ(d/√2) (600 rows: ±0.04)
        assert abs(auc - norm.cdf(d / np.sqrt(2))) < 0.04
    assert aucs[0] < aucs[1] < aucs[2]


def test_signal_predictions_are_calibrated(hr: ModuleType, world) -> None:  # type: ignore[no-untyped-def]
    fit, test = world
    Q = hr.signal_quality(fit, test, 1.5, seed=2)
    assert ((Q >= 0) & (Q <= 1)).all()
    # rows predicted high succeed more often than rows predicted low, close to the prediction
    hi, lo = Q > 0.7, Q < 0.3
    assert test.quality[hi].mean() > 0.6 and test.quality[lo].mean() < 0.4
    assert abs(test.quality.mean() - Q.mean()) < 0.05
