"""benchmarks/cv_rule.py applies the written default-choosing rule to made-up per-fold scores, and
benchmarks/cv_variants.py reads variant names as documented (no data, no fits)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def rule() -> ModuleType:
    return load_benchmark("cv_rule")


@pytest.fixture(scope="module")
def variants() -> ModuleType:
    return load_benchmark("cv_variants")


def _run(deltas: dict[str, list[float]], repeats: int = 1) -> dict[str, Any]:
    """A cv_variants JSON: the default scores 50 on every fold, a candidate 50 + its Δ."""
    folds = []
    for i in range(len(next(iter(deltas.values())))):
        aiq = {"d": 50.0, **{c: 50.0 + d[i] for c, d in deltas.items()}}
        m = {r: {"aiq_x100": v} for r, v in aiq.items()}
        folds.append(
            {
                "repeat": i // (len(next(iter(deltas.values()))) // repeats),
                "fold": i,
                "n_train": 400,
                "n_test": 100,
                "metrics": m,
                "metrics_task_mix": m,
            }
        )
    return {"folds": folds}


def test_a_gain_on_one_set_and_ties_elsewhere_passes(rule: ModuleType) -> None:
    runs = {
        "a": _run({"good": [1.0, 1.1, 0.9, 1.0, 1.0]}),
        "b": _run({"good": [0.0] * 5}),
        "c": _run({"good": [0.0] * 5}),
    }
    out = rule.judge(runs, "d")["good"]
    assert out["no_harm"] and out["pooled_gain"]
    assert out["random"]["pooled"]["mean"] == pytest.approx(1.0 / 3)
    # Nadeau–Bengio: s.e.² = (1/J + n_test/n_train) · s²
    se_a = ((1 / 5 + 0.25) * 0.005) ** 0.5
    assert out["random"]["sets"]["a"]["se"] == pytest.approx(se_a)
    assert out["task mix"]["pooled"]["se"] == pytest.approx(se_a / 3)


def test_a_loss_beyond_one_se_on_any_set_is_harm(rule: ModuleType) -> None:
    runs = {
        "a": _run({"c": [2.0, 2.1, 1.9, 2.0, 2.0]}),
        "b": _run({"c": [-0.3, -0.2, -0.25, -0.3, -0.2]}),
    }
    out = rule.judge(runs, "d")["c"]
    assert not out["no_harm"]
    assert out["pooled_gain"]  # the pooled gain alone does not let it pass


def test_a_noisy_gain_is_not_enough_and_repeats_can_be_cut(rule: ModuleType) -> None:
    runs = {"a": _run({"c": [1.0, -0.5, 1.5, -0.2, 0.4, 9.0, 9.0, 9.0, 9.0, 9.0]}, repeats=2)}
    first = rule.judge(runs, "d", repeats=1)["c"]
    assert first["random"]["sets"]["a"]["n"] == 5
    assert first["no_harm"] and not first["pooled_gain"]
    assert rule.judge(runs, "d")["c"]["random"]["sets"]["a"]["n"] == 10


def test_variant_names(variants: ModuleType) -> None:
    assert variants.parse_variant("tags-C0.25") == {
        "embedding": "tags",
        "model": "linear",
        "C": 0.25,
        "lsa": None,
        "tag_weight": None,
    }
    assert variants.parse_variant("tags-lsa32")["lsa"] == 32
    assert variants.parse_variant("tags-rf")["model"] == "rf"
    assert variants.parse_variant("knn") == {
        "embedding": "plain",
        "model": "knn",
        "C": None,
        "lsa": None,
        "tag_weight": None,
    }
    assert variants.parse_variant("tags-w4")["tag_weight"] == 4.0
    for bad in ("minilm", "tags-C", "tags-rf-C1", "tags-xyz", "plain-w2", "tags-w"):
        with pytest.raises(SystemExit):
            variants.parse_variant(bad)
