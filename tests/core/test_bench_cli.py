from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mixllm_core import ConfigError, MixLLMRouter
from mixllm_core.cli import main
from mixllm_core.experiments.bench import LAMBDA_GRID, format_table, run_bench
from mixllm_core.experiments.synthetic import make_synthetic_world
from mixllm_core.testing import HashingEncoder


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    data = make_synthetic_world(500, seed=1)
    result = run_bench(
        data,
        out,
        encoder=HashingEncoder(),
        timing_encoder=HashingEncoder(),
        make_router=lambda: MixLLMRouter(encoder=HashingEncoder(), quality_model="linear"),
        n_timed=20,
        show_progress=False,
    )
    return data, result


def test_bench_writes_one_decision_per_router_lambda_query(bench) -> None:
    data, result = bench
    _, test = data.train_test_split()
    df = pd.read_csv(result.out / "decisions.csv", keep_default_na=False)
    assert list(df.columns) == ["router", "lambda", "sample_id", "model"]
    assert {"mixllm", "knn", "mlp", "knn-cost", "oracle", "random"} <= set(df.router)
    assert {f"single:{m}" for m in data.llms} <= set(df.router)
    counts = df.groupby(["router", "lambda"]).sample_id.agg(["count", "nunique"])
    assert (counts["count"] == len(test)).all() and (counts["nunique"] == len(test)).all()
    assert df[df.router == "mixllm"]["lambda"].nunique() == len(LAMBDA_GRID)
    assert set(df.model) <= set(data.llms)


def test_bench_summary_metrics_are_consistent(bench) -> None:
    _, result = bench
    summary = json.loads((result.out / "summary.json").read_text())
    assert summary["synthetic"] is True
    routers = summary["routers"]
    oracle = routers["oracle"]["points"][0]["quality"]
    assert all(p["quality"] <= oracle + 1e-12 for r in routers.values() for p in r["points"])
    assert routers["mixllm"]["aiq"] > routers["random"]["aiq"]
    ref = routers[f"single:{summary['reference_llm']}"]
    assert ref["max_quality_pct"] == pytest.approx(100.0)
    for key in ("route_without_embedding", "embedding", "predict", "decide"):
        assert summary["timing"][key]["p50_ms"] >= 0
    assert (result.out / "pareto.png").stat().st_size > 10_000
    assert "SYNTHETIC" in format_table(summary)


def test_cli_train_then_load(tmp_path: Path) -> None:
    rows = []
    data = make_synthetic_world(120, seed=2)
    for i, q in enumerate(data.queries):
        for j, llm in enumerate(data.llms):
            rows.append(
                {
                    "sample_id": data.sample_ids[i],
                    "query": q,
                    "llm": llm,
                    "quality": data.quality[i, j],
                    "cost": data.cost[i, j],
                }
            )
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)
    code = main(
        [
            "train",
            "--data",
            str(tmp_path / "d.csv"),
            "--out",
            str(tmp_path / "r"),
            "--quality-model",
            "linear",
        ]
    )
    assert code == 0
    router = MixLLMRouter.load(tmp_path / "r")  # rebuilds the static encoder + its corpus part
    assert router.llms == data.llms
    assert router.route("solve the integral").llm in data.llms
    with pytest.raises(ConfigError, match=r"64-dimensional vectors .* \[192\]-dimensional"):
        MixLLMRouter.load(tmp_path / "r", encoder=HashingEncoder()).route("x")


def test_cli_reports_bad_input_without_traceback(tmp_path: Path, capsys) -> None:
    code = main(["train", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "r")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err
