from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mixllm_core import ConfigError, MixLLMRouter
from mixllm_core.cli import main
from mixllm_core.experiments.baselines import (
    MatrixFactorisation,
    duplicate_groups,
    tuned_knn,
)
from mixllm_core.experiments.cv import (
    cv_folds,
    format_cv_markdown,
    mixllm_router,
    paired_difference,
    run_cv,
    score_router,
    standard_routers,
)
from mixllm_core.experiments.synthetic import make_synthetic_world
from mixllm_core.testing import HashingEncoder
from tests.conftest import write_long_csv

LAMBDAS = (0.0, 0.3, 1.0, 3.0, 10.0, 100.0)


@pytest.fixture(scope="module")
def world():
    """300 synthetic queries; 40 of them repeated with other case/punctuation, as real traffic."""
    data = make_synthetic_world(340, seed=3)
    queries = list(data.queries)
    for i in range(40):  # row 300 + i is row i again, shouted
        queries[300 + i] = queries[i].upper() + " !!"
    return replace(data, queries=queries, split=None)


def test_random_folds_partition_the_rows_keep_duplicates_together_and_stratify(world) -> None:
    folds = cv_folds(world, k=5, repeats=2, seed=0)
    groups = duplicate_groups(world.queries)
    assert groups[300] == groups[0] and set(groups[300:]) <= set(groups[:300])
    tasks = np.asarray(world.tasks)
    overall = {t: np.mean(tasks == t) for t in set(tasks)}
    for r in (0, 1):
        tests = [f.test for f in folds if f.repeat == r]
        assert sorted(np.concatenate(tests).tolist()) == list(range(len(world)))
    for f in folds:
        assert not set(groups[f.train]) & set(groups[f.test])  # no prompt on both sides
        for t, share in overall.items():  # each fold's task mix is the data's (± 6 points)
            assert abs(np.mean(tasks[f.test] == t) - share) < 0.06
    assert not np.array_equal(folds[0].test, folds[5].test)  # the repeats shuffle differently


def test_a_task_rarer_than_the_fold_count_does_not_warn_and_every_row_is_tested(world) -> None:
    tasks = list(world.tasks)
    tasks[7] = "one-off"  # a task of one row: the pool of rare tasks is smaller than k
    data = replace(world, tasks=tasks)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn warns when a stratum is smaller than k
        folds = cv_folds(data, k=5, repeats=1, seed=0)
    assert sorted(np.concatenate([f.test for f in folds]).tolist()) == list(range(len(data)))


def test_task_shift_leaves_whole_tasks_out_and_drops_prompts_seen_in_training(world) -> None:
    tasks = np.asarray(world.tasks)
    data = replace(world, tasks=list(tasks))
    data.tasks[300] = (
        "logic" if tasks[0] != "logic" else "math"
    )  # a repeat filed under another task
    folds = cv_folds(data, k=5, repeats=3, task_shift=True)
    assert len(folds) == 5  # 5 tasks, 5 folds: leave-one-task-out, the repeats coincide
    assert sorted(t for f in folds for t in f.held_out_tasks) == sorted(set(data.tasks))
    groups = duplicate_groups(data.queries)
    for f in folds:
        assert set(np.asarray(data.tasks)[f.test]) == set(f.held_out_tasks)
        assert not set(np.asarray(data.tasks)[f.train]) & set(f.held_out_tasks)
        assert not set(groups[f.train]) & set(groups[f.test])
    three = cv_folds(data, k=3, repeats=2, task_shift=True)
    assert len(three) == 6 and all(len(f.held_out_tasks) >= 1 for f in three)


def test_folds_reject_what_they_cannot_do(world) -> None:
    with pytest.raises(ConfigError, match="task column"):
        cv_folds(replace(world, tasks=None), task_shift=True)
    with pytest.raises(ConfigError, match=r"k must be an int >= 2, got 1"):
        cv_folds(world, k=1)
    with pytest.raises(ConfigError, match="Unknown routers"):
        standard_routers(["knn", "gpt-router"])


def test_every_router_is_scored_on_every_fold_and_the_held_out_split_is_never_used() -> None:
    data = make_synthetic_world(400, seed=1)  # ~20% of rows marked test
    routers = {
        "mixllm": mixllm_router(lambda fold: MixLLMRouter(encoder=HashingEncoder())),
        **standard_routers(["knn", "knn-cv", "mf", "oracle", "random", "single-mix"]),
    }
    report = run_cv(
        data, routers, k=3, repeats=2, encoder=HashingEncoder(), lambdas=LAMBDAS, seed=0
    )
    n_train = sum(s == "train" for s in data.split or [])
    assert report.settings["n_rows"] == n_train < len(data)
    assert len(report.folds) == 6
    assert sum(f["n_test"] for f in report.folds) == 2 * n_train
    summary, diffs = report.summary(), report.differences()
    for fold in report.folds:
        assert set(fold["metrics"]) == set(routers)
        oracle = fold["metrics"]["oracle"]["aiq_x100"]
        assert all(m["aiq_x100"] <= oracle + 1e-9 for m in fold["metrics"].values())
    # measured: mixllm 79.9 vs random 46.3 AIQ points
    assert summary["mixllm"]["aiq_x100"]["mean"] > summary["random"]["aiq_x100"]["mean"] + 20
    for name in ("knn", "mf", "random"):  # a paired difference is the difference of the means
        d = diffs[name]["aiq_x100"]
        expect = summary["mixllm"]["aiq_x100"]["mean"] - summary[name]["aiq_x100"]["mean"]
        assert d["mean"] == pytest.approx(expect)
        assert d["se"] > d["se_naive"] > 0  # the corrected s.e. is the wider one
    json.dumps(report.to_dict())  # JSON-ready
    table = report.format_table()
    assert "mixllm" in table and "± " in table
    markdown = format_cv_markdown(report.to_dict()).splitlines()
    assert len(markdown) == 2 + len(routers) and markdown[2].startswith("| oracle |")


def test_paired_difference_is_nadeau_bengio_over_the_folds_both_scored() -> None:
    a = [60.0, 58.0, None, 61.0, 57.5]
    b = [59.0, 58.5, 50.0, 59.0, None]
    d = paired_difference(a, b, ratio=0.25)
    diffs = np.array([1.0, -0.5, 2.0])  # the folds where both are scored
    assert d["n"] == 3 and d["mean"] == pytest.approx(2.5 / 3)
    assert d["se"] == pytest.approx(np.sqrt((1 / 3 + 0.25) * diffs.var(ddof=1)))
    assert d["se_naive"] == pytest.approx(np.sqrt(diffs.var(ddof=1) / 3))
    assert paired_difference([1.0], [0.5], 0.25)["se"] == 0.0  # one fold: no spread
    assert paired_difference([None], [0.5], 0.25)["mean"] is None
    with pytest.raises(ConfigError, match="2 and 3"):
        paired_difference([1.0, 2.0], [1.0, 2.0, 3.0], 0.25)
    with pytest.raises(ConfigError, match="ratio"):
        paired_difference([1.0], [1.0], -0.1)


def test_score_router_sweeps_a_predictor_over_lambda() -> None:
    data = make_synthetic_world(200, seed=2)

    def truth(fold):  # a predictor that knows the answers is the oracle's equal
        return fold.test.quality, fold.test.cost

    report = run_cv(
        data,
        {"truth": score_router(truth), **standard_routers(["oracle", "random"])},
        k=3,
        repeats=1,
        encoder=HashingEncoder(),
        lambdas=(0.0, *np.geomspace(0.01, 1e4, 40)),
        baseline="truth",
    )
    s = report.summary()
    assert s["truth"]["aiq_x100"]["mean"] > s["oracle"]["aiq_x100"]["mean"] - 1.0
    assert s["truth"]["aiq_x100"]["mean"] > s["random"]["aiq_x100"]["mean"] + 30


def test_matrix_factorisation_learns_who_is_good_at_what() -> None:
    rng = np.random.default_rng(0)  # 6 LLMs whose skills are a rank-3 function of the query
    X = rng.normal(size=(1000, 20)) / np.sqrt(20)
    W, U = 3 * rng.normal(size=(20, 3)), rng.normal(size=(6, 3))
    P = 1 / (1 + np.exp(-(X @ W @ U.T)))
    Y = (rng.uniform(size=P.shape) < P).astype(float)
    pred = MatrixFactorisation(rank=3, seed=0).fit(X[:700], Y[:700]).predict(X[700:])
    brier = float(np.mean((pred - Y[700:]) ** 2))
    assert pred.min() >= 0 and pred.max() <= 1
    # measured: 0.069, knowing the true probabilities 0.063, each LLM's mean 0.250
    assert brier < float(np.mean((P[700:] - Y[700:]) ** 2)) + 0.02
    assert brier < float(np.mean((Y[:700].mean(0) - Y[700:]) ** 2)) - 0.1


def test_tuned_knn_picks_few_neighbours_for_sharp_data_and_many_for_noise() -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(600, 1))
    sharp = (np.sin(40 * X) > 0).astype(float)
    noise = rng.integers(0, 2, size=(600, 1)).astype(float)
    groups = np.arange(600)
    assert tuned_knn(X, sharp, groups, seed=0).n_neighbors <= 10
    assert tuned_knn(X, noise, groups, seed=0).n_neighbors >= 80


def test_cli_cross_validates_and_writes_cv_json(tmp_path: Path, capsys) -> None:
    data = make_synthetic_world(150, seed=5)
    csv = write_long_csv(data, tmp_path / "d.csv")
    args = ["bench", "--data", str(csv), "--out", str(tmp_path / "o"), "--no-progress"]
    assert main([*args, "--cv", "3", "--repeats", "1"]) == 0
    report = json.loads((tmp_path / "o" / "cv.json").read_text())
    assert {"mixllm", "knn", "knn-cost", "knn-cv", "mlp", "mf", "oracle"} <= set(report["summary"])
    assert len(report["folds"]) == 3 and "mixllm − router" in capsys.readouterr().out
    assert main([*args, "--repeats", "2"]) == 2
    assert "--repeats needs --cv" in capsys.readouterr().err


@pytest.mark.real_data
def test_task_shift_folds_on_llmrouter_hold_out_whole_tasks() -> None:
    from mixllm_core import load_routing_data
    from tests.conftest import LLMROUTER, require_shared

    data = load_routing_data(require_shared(LLMROUTER))
    tasks = np.asarray(data.tasks)
    folds = cv_folds(data, k=5, repeats=2, task_shift=True)
    assert len(folds) == 10
    for r in (0, 1):  # each repeat holds every task out once, in groups of similar size
        held = [t for f in folds if f.repeat == r for t in f.held_out_tasks]
        assert sorted(held) == sorted(set(tasks))
        sizes = [len(f.test) for f in folds if f.repeat == r]
        assert max(sizes) < 1.6 * min(sizes)  # measured 990–1,446 rows
    for f in folds:
        assert not set(tasks[f.train]) & set(f.held_out_tasks)
