"""Scoring cross-validation folds under a re-weighted task mix (cv.task_weights, task_mix=)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixllm_core import ConfigError, RoutingData
from mixllm_core.cli import main
from mixllm_core.experiments.cv import fold_metrics, run_cv, standard_routers, task_weights
from mixllm_core.experiments.synthetic import make_synthetic_world
from mixllm_core.testing import HashingEncoder
from tests.conftest import write_long_csv


def test_uniform_weights_give_every_task_the_same_total_and_damp_tiny_tasks() -> None:
    tasks = ["a"] * 60 + ["b"] * 30 + ["c"] * 10 + ["d"] * 2
    w = task_weights(tasks, "uniform")
    totals = {t: w[np.asarray(tasks) == t].sum() for t in "abcd"}
    assert w.sum() == pytest.approx(1.0)
    assert totals["a"] == pytest.approx(totals["b"]) == pytest.approx(totals["c"])
    assert totals["d"] == pytest.approx(0.4 * totals["a"])  # 2 rows count 2/5 of a task
    shares = task_weights(tasks, {"a": 3.0, "c": 1.0, "zzz": 5.0})  # absent tasks drop out
    assert shares[np.asarray(tasks) == "a"].sum() == pytest.approx(0.75)
    assert shares[np.asarray(tasks) == "b"].sum() == 0.0
    with pytest.raises(ConfigError, match="needs a task column"):
        task_weights(None, "uniform")
    with pytest.raises(ConfigError, match="'skewed'"):
        task_weights(tasks, "skewed")
    with pytest.raises(ConfigError, match="No row has a task with a share"):
        task_weights(tasks, {"zzz": 1.0})


def test_weighted_metrics_equal_the_metrics_of_the_rows_weighted() -> None:
    rng = np.random.default_rng(0)
    n = 40
    quality, cost = rng.uniform(size=(n, 3)), rng.uniform(0.1, 1.0, size=(n, 3)) * [1, 3, 9]
    tasks = ["x"] * 30 + ["y"] * 10
    test = RoutingData([f"q{i}" for i in range(n)], ["s", "m", "l"], quality, cost, tasks=tasks)
    choices = {lam: rng.integers(0, 3, n) for lam in range(5)}
    plain = fold_metrics(choices, test, reference=2)
    assert fold_metrics(choices, test, 2, np.full(n, 1 / n)) == pytest.approx(plain)
    # all weight on task y: the same as scoring y's rows alone
    only_y = fold_metrics(choices, test, 2, task_weights(tasks, {"y": 1.0}))
    rows = np.arange(30, 40)
    sub = test.subset(rows.tolist())
    alone = fold_metrics({k: v[rows] for k, v in choices.items()}, sub, 2)
    assert only_y == pytest.approx(alone)
    # uniform: task y (a quarter of the rows) now weighs half, and the score moves
    uniform = fold_metrics(choices, test, 2, task_weights(tasks, "uniform"))
    assert uniform["aiq_x100"] != pytest.approx(plain["aiq_x100"], abs=1e-6)


def test_run_cv_scores_both_mixes_from_one_fit_and_the_cli_prints_both(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    data = make_synthetic_world(150, seed=5)
    report = run_cv(
        data,
        standard_routers(["knn", "oracle"]),
        k=3,
        repeats=1,
        encoder=HashingEncoder(),
        baseline="knn",
        lambdas=[0.0, 1.0, 100.0],
        task_mix="uniform",
    )
    mixed = report.with_task_mix()
    assert mixed.folds is report.folds and mixed.scoring == "metrics_task_mix"
    d = report.to_dict()
    assert d["settings"]["task_mix"] == "uniform" and set(d["task_mix"]["summary"]) == {
        "knn",
        "oracle",
    }
    assert d["task_mix"]["summary"]["knn"]["aiq_x100"]["mean"] != pytest.approx(
        d["summary"]["knn"]["aiq_x100"]["mean"], abs=1e-6
    )
    assert "task mix 'uniform'" in mixed.format_table()
    plain = run_cv(
        data, standard_routers(["knn"]), k=3, repeats=1, encoder=HashingEncoder(), baseline="knn"
    )
    with pytest.raises(ConfigError, match="without a task mix"):
        plain.with_task_mix()
    import mixllm_core.experiments.cv as cv

    few = cv.standard_routers(["knn", "oracle"])  # the bench's other baselines are slow to fit
    monkeypatch.setattr(cv, "standard_routers", lambda names=None: few)
    csv = write_long_csv(data, tmp_path / "d.csv")
    table = pd.read_csv(csv)
    task_of = dict(zip(data.sample_ids, data.tasks or []))
    table["task"] = table["sample_id"].astype(str).map(task_of)
    table.to_csv(csv, index=False)
    args = ["bench", "--data", str(csv), "--out", str(tmp_path / "o"), "--no-progress"]
    assert main([*args, "--cv", "3", "--repeats", "1", "--task-mix", "uniform"]) == 0
    out = capsys.readouterr().out
    assert out.count("mixllm − router") == 2 and "task mix 'uniform'" in out
    saved = json.loads((tmp_path / "o" / "cv.json").read_text())
    assert "mixllm" in saved["task_mix"]["summary"]
    assert main([*args, "--task-mix", "uniform"]) == 2
    assert "--task-mix needs --cv" in capsys.readouterr().err


def test_a_task_mix_can_be_given_as_json_or_a_file_and_bad_mixes_are_named(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    import mixllm_core.experiments.cv as cv

    data = make_synthetic_world(120, seed=6)
    with pytest.raises(ConfigError, match=r"does not have: \['mathematics'\]"):
        run_cv(
            data,
            standard_routers(["knn"]),
            k=3,
            repeats=1,
            encoder=HashingEncoder(),
            baseline="knn",
            task_mix={"math": 1.0, "mathematics": 1.0},
        )
    few = cv.standard_routers(["knn"])
    monkeypatch.setattr(cv, "standard_routers", lambda names=None: few)
    csv = write_long_csv(data, tmp_path / "d.csv")
    table = pd.read_csv(csv)
    table["task"] = table["sample_id"].astype(str).map(dict(zip(data.sample_ids, data.tasks or [])))
    table.to_csv(csv, index=False)
    args = ["bench", "--data", str(csv), "--no-progress", "--cv", "3", "--repeats", "1"]
    mix = {"math": 1, "code": 3}
    (tmp_path / "mix.json").write_text(json.dumps(mix))
    for i, given in enumerate([json.dumps(mix), str(tmp_path / "mix.json")]):
        assert main([*args, "--out", str(tmp_path / f"o{i}"), "--task-mix", given]) == 0
        saved = json.loads((tmp_path / f"o{i}" / "cv.json").read_text())
        assert saved["settings"]["task_mix"] == {"math": 1.0, "code": 3.0}
    first, second = (json.loads((tmp_path / f"o{i}" / "cv.json").read_text()) for i in (0, 1))
    assert first["task_mix"]["summary"] == second["task_mix"]["summary"]
    assert first["task_mix"]["summary"] != first["summary"]
    capsys.readouterr()
    (tmp_path / "list.json").write_text("[1, 2]")
    bad = {
        "weighted": "Invalid --task-mix 'weighted'",
        '{"math": "high"}': "shares that are not numbers: {'math': 'high'}",
        "[1, 2]": "Invalid --task-mix '[1, 2]'",
        str(tmp_path / "list.json"): "gives a list",
        '{"math": 1': "is not valid JSON",
        '{"math": 1, "maths": 1}': "does not have: ['maths']",
        '{"maths": 1}': "(tasks: ['code', 'logic', 'math', 'trivia', 'writing'])",
    }
    for given, message in bad.items():
        assert main([*args, "--out", str(tmp_path / "bad"), "--task-mix", given]) == 2
        assert message in capsys.readouterr().err, given
