from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixllm_core import DataFormatError, RoutingData, load_routing_data
from mixllm_core.data import load_generic, load_routerbench, load_routerbench_hub

MODELS = ["gpt-4-1106-preview", "mistralai/mistral-7b-chat"]


def routerbench_frame(n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        row = {
            "sample_id": f"arc.{i}",
            "prompt": str([f"Question {i}?", "Answer:"]),
            "eval_name": "arc",
        }
        for m in MODELS:
            row[m] = float(rng.integers(0, 2))
            row[f"{m}|total_cost"] = float(rng.uniform(1e-5, 1e-3))
            row[f"{m}|model_response"] = str(["A"])
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_routerbench_file_formats(tmp_path: Path, suffix: str) -> None:
    df = routerbench_frame()
    path = tmp_path / f"rb{suffix}"
    df.to_parquet(path) if suffix == ".parquet" else df.to_csv(path, index=False)
    data = load_routing_data(path)
    assert data.source == "routerbench"
    assert data.llms == MODELS
    assert data.queries[0] == "Question 0?\nAnswer:"  # stringified list of turns, joined
    np.testing.assert_allclose(data.quality, df[MODELS].to_numpy())
    np.testing.assert_allclose(data.cost[:, 1], df[f"{MODELS[1]}|total_cost"])
    assert data.tasks == ["arc"] * 6


def test_routerbench_pickle_needs_explicit_trust(tmp_path: Path) -> None:
    path = tmp_path / "routerbench_0shot.pkl"
    routerbench_frame().to_pickle(path)
    with pytest.raises(DataFormatError, match="trust_pickle"):
        load_routerbench(path)
    assert len(load_routerbench(path, trust_pickle=True)) == 6


def test_routerbench_hub_loader_uses_injected_download(tmp_path: Path) -> None:
    path = tmp_path / "routerbench_0shot.pkl"
    routerbench_frame(4).to_pickle(path)
    calls = []

    def download(**kwargs: str) -> str:
        calls.append(kwargs)
        return str(path)

    data = load_routerbench_hub(download=download, trust_pickle=True)
    assert calls == [
        {
            "repo_id": "withmartian/routerbench",
            "filename": "routerbench_0shot.pkl",
            "repo_type": "dataset",
        }
    ]
    assert len(data) == 4


def test_routerbench_nan_rows_dropped_or_rejected(tmp_path: Path) -> None:
    df = routerbench_frame()
    df.loc[2, MODELS[0]] = np.nan
    path = tmp_path / "rb.parquet"
    df.to_parquet(path)
    assert len(load_routerbench(path)) == 5
    with pytest.raises(DataFormatError, match="NaN"):
        load_routerbench(path, drop_incomplete=False)


def test_llmrouter_format_prices_tokens(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "question": ["What is 2+2?", "Name a prime."],
            "task_name": ["gsm8k", "math"],
            "split": ["train", "test"],
            "score__a": [1.0, 0.5],
            "score__b": [0.0, 1.0],
        }
    )
    df.to_parquet(tmp_path / "scores.parquet")
    (tmp_path / "default_llm.json").write_text(
        json.dumps(
            {
                "a": {"input_price": 0.1, "output_price": 0.2, "size": "7B"},
                "b": {"input_price": 0.9, "output_price": 0.9},
            }
        )
    )
    data = load_routing_data(tmp_path / "scores.parquet")
    assert data.source == "llmrouter" and data.llms == ["a", "b"]
    assert data.specs["b"].input_price == 0.9
    expected = (data.input_tokens[0, 0] * 0.1 + 200 * 0.2) / 1e6
    assert data.cost[0, 0] == pytest.approx(expected)
    train, test = data.train_test_split()
    assert test.queries == ["Name a prime."]


def test_generic_long_format_and_errors(tmp_path: Path) -> None:
    rows = [
        {
            "sample_id": "q1",
            "query": "hi",
            "llm": "a",
            "quality": 1.0,
            "cost": 0.1,
            "split": "train",
        },
        {
            "sample_id": "q1",
            "query": "hi",
            "llm": "b",
            "quality": 0.0,
            "cost": 0.2,
            "split": "train",
        },
        {
            "sample_id": "q2",
            "query": "yo",
            "llm": "a",
            "quality": 0.5,
            "cost": 0.1,
            "split": "test",
        },
        {
            "sample_id": "q2",
            "query": "yo",
            "llm": "b",
            "quality": 1.0,
            "cost": 0.3,
            "split": "test",
        },
    ]
    pd.DataFrame(rows).to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    data = load_generic(tmp_path / "d.jsonl")
    assert data.llms == ["a", "b"] and data.queries == ["hi", "yo"]
    np.testing.assert_allclose(data.cost, [[0.1, 0.2], [0.1, 0.3]])
    pd.DataFrame(rows[:3]).to_csv(tmp_path / "missing.csv", index=False)
    partial = load_generic(tmp_path / "missing.csv")  # q2 has no row for b: unobserved
    assert partial.observed is not None and partial.observed.tolist() == [
        [True, True],
        [True, False],
    ]
    assert np.isnan(partial.quality[1, 1]) and partial.observed_rows("b").tolist() == [0]
    pd.DataFrame([{k: v for k, v in r.items() if k != "quality"} for r in rows]).to_csv(
        tmp_path / "noq.csv", index=False
    )
    with pytest.raises(DataFormatError, match=r"lacks the columns \['quality'\]"):
        load_routing_data(tmp_path / "noq.csv")


def test_routing_data_validation_names_the_problem() -> None:
    with pytest.raises(DataFormatError, match=r"quality has shape \(2, 1\), expected \(2, 2\)"):
        RoutingData(["a", "b"], ["x", "y"], np.zeros((2, 1)))
    with pytest.raises(DataFormatError, match="first at query 1 .* for LLM 'y'"):
        RoutingData(["a", "b"], ["x", "y"], np.array([[0, 1], [1, np.nan]]))
    with pytest.raises(DataFormatError, match="split values"):
        RoutingData(["a"], ["x"], np.zeros((1, 1)), split=["dev"])
    with pytest.raises(DataFormatError, match="Unsupported file type"):
        load_routing_data(Path(__file__))


def test_seeded_split_is_deterministic_and_disjoint() -> None:
    data = RoutingData([f"q{i}" for i in range(50)], ["a"], np.zeros((50, 1)))
    tr1, te1 = data.train_test_split(seed=3)
    tr2, te2 = data.train_test_split(seed=3)
    assert te1.sample_ids == te2.sample_ids and len(te1) == 10
    assert not set(tr1.sample_ids) & set(te1.sample_ids)
