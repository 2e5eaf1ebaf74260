from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from mixllm_core.cli import main
from mixllm_core.experiments.synthetic import make_synthetic_world


def _table_with_split(path: Path) -> Path:
    """The synthetic world as the generic long format, with its own task and split columns."""
    data = make_synthetic_world(250, seed=7)
    assert data.cost is not None and data.tasks is not None and data.split is not None
    rows = [
        {
            "sample_id": sid,
            "query": q,
            "llm": llm,
            "quality": data.quality[i, j],
            "cost": data.cost[i, j],
            "task": data.tasks[i],
            "split": data.split[i],
        }
        for i, (sid, q) in enumerate(zip(data.sample_ids, data.queries, strict=True))
        for j, llm in enumerate(data.llms)
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_tag_ablation_runs_on_a_table_with_its_own_split(tmp_path: Path, capsys) -> None:
    """The timing stage used to swap the router's tagged encoder for a plain one and crash
    ("the predictors were fit on [N+tags]-dimensional ones") after routing, writing nothing."""
    csv = _table_with_split(tmp_path / "d.csv")
    out = tmp_path / "o"
    args = ["bench", "--data", str(csv), "--out", str(out), "--embedding", "tags"]
    assert main([*args, "--n-timed", "10", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["embedding"] == "tags"
    assert summary["router_config"]["encoder"]["type"] == "tagged"
    assert summary["n_test"] == sum(s == "test" for s in make_synthetic_world(250, seed=7).split)
    assert summary["timing"]["route_with_embedding"]["p50_ms"] > 0
    assert (out / "decisions.csv").stat().st_size > 0
    assert "mixllm" in capsys.readouterr().out
