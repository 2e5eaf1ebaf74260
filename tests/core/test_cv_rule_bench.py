"""benchmarks/cv_rule.py applies the written default-choosing rule to made-up per-fold scores, and
benchmarks/cv_variants.py reads variant names as documented (no data, no fits)."""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from mixllm_core.experiments.cv import CVReport, paired_difference
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


def test_the_conditions_at_their_bounds(rule: ModuleType) -> None:
    # exactly −1 s.e. is no harm (≥); a pooled Δ of exactly 2 s.e. is no gain (>)
    edge = rule.quality_conditions({"metrics": [{"mean": -0.5, "se": 0.5}]})
    assert edge["no_harm"] and not edge["gain"]
    assert not rule.quality_conditions({"metrics": [{"mean": -0.51, "se": 0.5}]})["no_harm"]
    met = rule.quality_conditions({"metrics": [{"mean": 1.0, "se": 0.5}]})
    assert met["pooled"]["metrics"] == {"mean": 1.0, "se": 0.5, "passes": False}
    assert rule.quality_conditions({"metrics": [{"mean": 1.01, "se": 0.5}]})["gain"]
    # a gain under one scoring only is no gain
    two = {"metrics": [{"mean": 3.0, "se": 0.5}], "metrics_task_mix": [{"mean": 0.5, "se": 0.5}]}
    assert not rule.quality_conditions(two)["gain"]


def test_nested_selection_applies_the_same_rule(rule: ModuleType) -> None:
    """cv_rule.judge and nested_selection.select reach the same verdicts on the same Δs."""
    ns = load_benchmark("nested_selection")
    rng = np.random.default_rng(0)
    verdicts = set()
    for _ in range(40):
        runs = {s: _run({"c": list(rng.normal(rng.normal(0.5, 1), 0.6, 5))}) for s in "abc"}
        judged = rule.judge(runs, "d")["c"]
        tie = {"mean": 0.0, "se": 0.0}
        deltas = {
            s: {
                sc: {"tags": judged[label]["sets"][s], "minilm": tie, "minilm-tags": tie}
                for sc, label in rule.SCORINGS.items()
            }
            for s in runs
        }
        pick, why = ns.select(deltas, latency=True)
        assert (why["tags"]["no_harm"], why["tags"]["gain"]) == (
            judged["no_harm"],
            judged["pooled_gain"],
        )
        assert pick == ("tags" if judged["no_harm"] and judged["pooled_gain"] else "static")
        verdicts.add((judged["no_harm"], judged["pooled_gain"]))
    assert len(verdicts) >= 3  # the cases reach harm, gain and neither


def test_both_scripts_pair_folds_as_the_library_does(
    rule: ModuleType, variants: ModuleType
) -> None:
    """cv_rule.paired and cv_variants.paired give the library's paired differences (its sign
    is ``baseline − router``, theirs ``router − baseline``), None folds included."""
    rng = np.random.default_rng(1)
    folds = []
    for i in range(6):
        m = {
            r: {
                "aiq_x100": float(rng.normal(50, 2)),
                "q_pct_at_25": 80.0 + i,
                "cost_pct_for_97": None,
            }
            for r in "xyz"
        }
        folds.append(
            {"repeat": i // 3, "fold": i % 3, "n_train": 300 + i, "n_test": 60, "metrics": m}
        )
    folds[4]["metrics"]["y"]["aiq_x100"] = None
    report = CVReport({}, folds, baseline="x")
    lib = report.differences()
    for r in ("y", "z"):
        ours = rule.paired(report.to_dict(), r, "x", "metrics")
        theirs = variants.paired(report, report.to_dict(), router="x")[r]["aiq_x100"]
        for got in (ours, theirs):
            assert got["mean"] == pytest.approx(-lib[r]["aiq_x100"]["mean"])
            assert got["n"] == lib[r]["aiq_x100"]["n"] == (5 if r == "y" else 6)
        # the library's ratio is over every fold, cv_rule's over the folds it keeps
        assert theirs["se"] == pytest.approx(lib[r]["aiq_x100"]["se"])
        kept = [f for f in folds if f["metrics"][r]["aiq_x100"] is not None]
        ratio = float(np.mean([f["n_test"] / f["n_train"] for f in kept]))
        assert ours["se"] == pytest.approx(
            paired_difference(
                [f["metrics"][r]["aiq_x100"] for f in kept],
                [f["metrics"]["x"]["aiq_x100"] for f in kept],
                ratio,
            )["se"]
        )
    assert rule.paired(report.to_dict(), "z", "x", "metrics", repeats=1)["n"] == 3


def test_the_command_lines_run_this_checkouts_library(
    rule: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The scripts import mixllm_core: their docstring command lines, and cv_rule's --help, say
    ``PYTHONPATH=.`` (from a checkout, Python puts benchmarks/ on the path, not the root)."""
    monkeypatch.setattr(sys, "argv", ["cv_rule.py", "--help"])
    with pytest.raises(SystemExit) as done:
        rule.main()
    assert done.value.code == 0
    assert "PYTHONPATH=. python benchmarks/cv_rule.py" in capsys.readouterr().out
    ns = load_benchmark("nested_selection")
    for name, text in (("cv_rule", rule.__doc__), ("nested_selection", ns.__doc__)):
        runs = [line for line in text.splitlines() if f"benchmarks/{name}.py" in line]
        assert runs and all("PYTHONPATH=. python" in line for line in runs), runs


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
