"""benchmarks/nested_selection.py applies the written selection rule as written, and its nested
estimate scores, in each outer fold, the candidate that fold's inner CV picked.

Only the script's logic is checked here, on made-up inner and outer scores (no data, no fits).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def ns() -> ModuleType:
    return load_benchmark("nested_selection")


def _deltas(per_set: dict[str, dict[str, tuple[float, float]]]) -> dict[str, Any]:
    """{set: {candidate: (mean, se)}}, the same under both scorings."""
    return {
        s: {
            sc: {c: {"mean": m, "se": se} for c, (m, se) in cands.items()}
            for sc in ("metrics", "metrics_task_mix")
        }
        for s, cands in per_set.items()
    }


TIE = (0.0, 0.0)


def test_a_pooled_gain_without_harm_replaces_the_incumbent(ns: ModuleType) -> None:
    deltas = _deltas(
        {
            "a": {"tags": (1.2, 0.3), "minilm": TIE, "minilm-tags": TIE},
            "b": {"tags": (-0.1, 0.2), "minilm": TIE, "minilm-tags": TIE},
            "c": {"tags": TIE, "minilm": TIE, "minilm-tags": TIE},
        }
    )
    pick, why = ns.select(deltas, latency=True)
    assert pick == "tags"
    assert why["tags"]["no_harm"] and why["tags"]["gain"]
    # pooled: mean (1.2 − 0.1 + 0) / 3, s.e. √(0.09 + 0.04) / 3
    assert why["tags"]["pooled"]["metrics"]["mean"] == pytest.approx(1.1 / 3)
    assert why["tags"]["pooled"]["metrics"]["se"] == pytest.approx(0.13**0.5 / 3)
    # ties everywhere: no gain, the incumbent stays
    assert not why["minilm"]["gain"]


def test_harm_on_one_set_or_too_small_a_gain_keeps_the_incumbent(ns: ModuleType) -> None:
    harm = _deltas(
        {
            "a": {"tags": (3.0, 0.3), "minilm": TIE, "minilm-tags": TIE},
            "b": {"tags": (-0.5, 0.4), "minilm": TIE, "minilm-tags": TIE},  # −1.25 s.e.
        }
    )
    pick, why = ns.select(harm, latency=True)
    assert pick == "static" and not why["tags"]["no_harm"] and why["tags"]["gain"]
    small = _deltas(
        {
            "a": {"tags": (0.5, 0.3), "minilm": TIE, "minilm-tags": TIE},
            "b": {"tags": (0.1, 0.3), "minilm": TIE, "minilm-tags": TIE},
        }
    )  # pooled 0.3 ± 0.21: under 2 s.e.
    assert ns.select(small, latency=True)[0] == "static"


def test_latency_rules_out_minilm_and_the_larger_pooled_gain_wins(ns: ModuleType) -> None:
    deltas = _deltas(
        {
            "a": {"tags": (1.0, 0.2), "minilm": (2.0, 0.2), "minilm-tags": (2.5, 0.2)},
            "b": {"tags": (1.0, 0.2), "minilm": (2.0, 0.2), "minilm-tags": (1.9, 0.2)},
        }
    )
    assert ns.select(deltas, latency=True)[0] == "tags"
    assert ns.select(deltas, latency=False)[0] == "minilm-tags"  # pooled 2.2 > 2.0


def _fold(i: int, scores: dict[str, float]) -> dict[str, Any]:
    return {"fold": i, "n_train": 80, "n_test": 20, "metrics": scores, "metrics_task_mix": scores}


def test_the_nested_estimate_scores_each_folds_own_pick(ns: ModuleType) -> None:
    cands = list(ns.CANDIDATES)
    gain = {"tags": (1.0, 0.1), "minilm": TIE, "minilm-tags": TIE}
    none = {"tags": TIE, "minilm": TIE, "minilm-tags": TIE}
    inner = [
        {"delta": _deltas({"x": gain})["x"]},  # fold 0 picks tags
        {"delta": _deltas({"x": none})["x"]},  # fold 1 keeps static
    ]
    outer = [
        _fold(0, {"static": 50.0, "tags": 52.0, "minilm": 49.0, "minilm-tags": 53.0}),
        _fold(1, {"static": 60.0, "tags": 61.0, "minilm": 58.0, "minilm-tags": 59.0}),
    ]
    result: dict[str, Any] = {
        "settings": {"sets": ["x"], "candidates": cands, "outer_k": 2},
        "sets": {"x": {"outer": outer, "inner": inner}},
    }
    ns.summarise(result)
    assert [s["selected"] for s in result["selections"]] == ["tags", "static"]
    est = result["sets"]["x"]["estimates"]["metrics"]
    assert est["nested"]["mean"] == pytest.approx((52.0 + 60.0) / 2)
    assert est["nested_minus_tags"]["mean"] == pytest.approx((0.0 - 1.0) / 2)
    assert est["minilm_minus_static"]["mean"] == pytest.approx(-1.5)
    assert est["best_candidate_by_outer_mean"] == "tags"
    assert "| x |" in ns.markdown(result)


def test_a_subset_of_candidates_is_selected_and_summarised(ns: ModuleType) -> None:
    """``--candidates static minilm``: the rule, the estimates and the tables cover the
    candidates run; without ``tags`` there is no "− tags" column."""
    big = {"minilm": (2.0, 0.2)}
    inner = [{"delta": _deltas({"x": big})["x"]}, {"delta": _deltas({"x": {"minilm": TIE}})["x"]}]
    pick, why = ns.select({"x": inner[0]["delta"]}, latency=False)
    assert pick == "minilm" and list(why) == ["minilm"]
    assert ns.select({"x": inner[0]["delta"]}, latency=True)[0] == "static"  # too slow
    outer = [_fold(0, {"static": 50.0, "minilm": 53.0}), _fold(1, {"static": 60.0, "minilm": 58.0})]
    result: dict[str, Any] = {
        "settings": {"sets": ["x"], "candidates": ["static", "minilm"], "outer_k": 2},
        "sets": {"x": {"outer": outer, "inner": inner}},
    }
    ns.summarise(result)
    assert [s["selected_quality_only"] for s in result["selections"]] == ["minilm", "static"]
    est = result["sets"]["x"]["estimates"]["metrics"]
    assert est["nested_quality_only"]["mean"] == pytest.approx((53.0 + 60.0) / 2)
    assert est["minilm_minus_static"]["mean"] == pytest.approx(0.5)
    assert "nested_minus_tags" not in est
    assert list(result["pooled_over_sets"]["metrics"]) == ["minilm_minus_static"]
    table = ns.markdown(result)
    assert "| x | 55.00 ± " in table and "tags" not in table
    # with tags among them, the nested estimate is still reported minus tags
    for f, t in zip(outer, (51.0, 61.0)):
        f["metrics"]["tags"] = t  # the two scorings share one dict
    for i in inner:
        for sc in i["delta"].values():
            sc["tags"] = {"mean": 0.0, "se": 0.0}
    result["settings"]["candidates"] = ["static", "tags", "minilm"]
    ns.summarise(result)
    est = result["sets"]["x"]["estimates"]["metrics"]
    assert est["nested_quality_only_minus_tags"]["mean"] == pytest.approx((2.0 - 1.0) / 2)
    assert "| rule − tags | quality only − tags |" in ns.markdown(result)


def test_sets_that_ran_different_candidates_are_refused(ns: ModuleType) -> None:
    deltas = {**_deltas({"a": {"tags": TIE}}), **_deltas({"b": {"tags": TIE, "minilm": TIE}})}
    with pytest.raises(SystemExit, match="different candidates"):
        ns.select(deltas, latency=True)


def test_estimates_are_the_librarys_and_leave_out_folds_without_a_score(ns: ModuleType) -> None:
    """Per-candidate estimates are ``CVReport.summary``'s and the paired ones the library's
    ``paired_difference`` (Nadeau–Bengio, ratio n_test / n_train = 0.25): a fold where a
    candidate has no AIQ is left out of its estimates, as in the CV report."""
    none = _deltas({"x": {"tags": TIE, "minilm": TIE}})["x"]
    outer = [
        _fold(0, {"static": 50.0, "tags": 52.0, "minilm": 49.0}),
        _fold(1, {"static": 60.0, "tags": 61.0, "minilm": None}),
        _fold(2, {"static": 55.0, "tags": 58.0, "minilm": 57.0}),
    ]
    result: dict[str, Any] = {
        "settings": {"sets": ["x"], "candidates": ["static", "tags", "minilm"], "outer_k": 3},
        "sets": {"x": {"outer": outer, "inner": [{"delta": none}] * 3}},
    }
    ns.summarise(result)
    est = result["sets"]["x"]["estimates"]["metrics"]
    # tags − static: 2, 1, 3 → mean 2, s² = 1, s.e. √((1/3 + 0.25) · 1)
    assert est["tags_minus_static"] == pytest.approx({"mean": 2.0, "se": (1 / 3 + 0.25) ** 0.5})
    # minilm: folds 0 and 2 only, 49 and 57 (s² = 32); minilm − static −1 and 2 (s² = 4.5)
    assert est["minilm"] == pytest.approx({"mean": 53.0, "se": ((1 / 2 + 0.25) * 32) ** 0.5})
    assert est["minilm_minus_static"] == pytest.approx(
        {"mean": 0.5, "se": ((1 / 2 + 0.25) * 4.5) ** 0.5}
    )
    # no candidate passes the inner rule: the nested estimate is static's, 50, 60, 55 (s² = 25)
    assert est["nested"] == pytest.approx({"mean": 55.0, "se": ((1 / 3 + 0.25) * 25) ** 0.5})
    assert est["nested_minus_tags"]["mean"] == pytest.approx(-2.0)
    assert "| x |" in ns.markdown(result)


def test_a_variant_name_candidate_is_built_by_cv_variants_and_fitted_on_every_fold(
    ns: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--candidates tags-C0.25 tags-knn``: ``cv_variants.variant`` builds the routers (tag
    features, the variant's quality model and C), and rule (3) fails the slow quality models."""
    from dataclasses import replace

    from mixllm_core import MixLLMRouter
    from mixllm_core.encoders import TaggedEncoder
    from mixllm_core.experiments.cv import run_cv
    from mixllm_core.experiments.synthetic import make_synthetic_world
    from mixllm_core.testing import HashingEncoder

    fitted: list[tuple[str, dict[str, Any], bool]] = []
    fit = MixLLMRouter.fit

    def spy(self: MixLLMRouter, *args: Any, **kwargs: Any) -> MixLLMRouter:
        fitted.append(
            (self.quality_model, self.quality_params, isinstance(self.encoder, TaggedEncoder))
        )
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(MixLLMRouter, "fit", spy)
    data = replace(make_synthetic_world(120, seed=2), split=None)
    names = ("static", "tags-C0.25", "tags-knn")
    routers = {c: ns.candidate(c, HashingEncoder()) for c in names}
    report = run_cv(
        data, routers, 2, 1, encoder=HashingEncoder(), lambdas=(0.0, 1.0, 10.0), baseline="static"
    )
    assert all(f["metrics"][c]["aiq_x100"] is not None for f in report.folds for c in names)
    assert fitted == 2 * [("linear", {}, False), ("linear", {"C": 0.25}, True), ("knn", {}, True)]
    assert [ns.meets_latency(c) for c in names] == [True, True, False]
    assert not ns.meets_latency("tags-rf") and not ns.meets_latency("tags-mlp")
    assert ns.meets_latency("tags-lsa32") and ns.meets_latency("tags-w4")
    with pytest.raises(SystemExit, match="starts with plain, tags"):
        ns.meets_latency("bert")


def test_a_variant_with_the_largest_passing_gain_is_selected_and_summarised(
    ns: ModuleType,
) -> None:
    """Made-up scores: among the passing candidates the largest pooled Δ wins, here a variant;
    tags-knn, larger still, fails rule (3) only, so quality alone picks it."""
    per_set = {
        "tags": (1.0, 0.2),
        "minilm": TIE,
        "tags-C0.25": (1.5, 0.2),
        "tags-lsa32": (0.1, 0.3),
        "tags-knn": (2.5, 0.2),
    }
    deltas = _deltas({"a": per_set, "b": per_set})
    pick, why = ns.select(deltas, latency=True)
    assert pick == "tags-C0.25" and list(why) == list(per_set)
    assert not why["tags-knn"]["latency"] and why["tags-C0.25"]["latency"]
    assert not why["tags-lsa32"]["gain"]  # pooled 0.1 ± 0.21
    assert ns.select(deltas, latency=False)[0] == "tags-knn"
    cands = ["static", *per_set]
    inner = [{"delta": _deltas({"x": per_set})["x"]}, {"delta": _deltas({"x": per_set})["x"]}]
    base = {"static": 50.0, "tags": 51.0, "minilm": 50.0, "tags-lsa32": 50.0, "tags-knn": 53.0}
    outer = [_fold(0, {**base, "tags-C0.25": 52.0}), _fold(1, {**base, "tags-C0.25": 54.0})]
    result: dict[str, Any] = {
        "settings": {"sets": ["x"], "candidates": cands, "outer_k": 2},
        "sets": {"x": {"outer": outer, "inner": inner}},
    }
    ns.summarise(result)
    assert [s["selected"] for s in result["selections"]] == ["tags-C0.25", "tags-C0.25"]
    est = result["sets"]["x"]["estimates"]["metrics"]
    assert est["nested"]["mean"] == pytest.approx(53.0)
    assert est["nested_minus_tags"]["mean"] == pytest.approx(2.0)
    assert est["tags-C0.25_minus_static"]["mean"] == pytest.approx(3.0)
    assert "pooled Δ tags-C0.25 (random / task mix)" in ns.markdown(result)
