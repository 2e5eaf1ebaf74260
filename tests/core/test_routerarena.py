"""RouterArena's cached results (../shared/data/routerarena_sub10; skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixllm_core import load_routing_data
from mixllm_core.data import load_routerarena
from mixllm_core.errors import DataFormatError
from tests.conftest import SHARED_DATA, require_shared

ROUTERARENA = SHARED_DATA / "routerarena_sub10" / "routerarena_sub10_cached_results.parquet"


@pytest.mark.real_data
def test_routerarena_loads_with_measured_tokens_costs_and_prices() -> None:
    data = load_routing_data(require_shared(ROUTERARENA))
    assert data.source == "routerarena"
    assert len(data) == 809 and data.llms == ["claude-3-haiku-20240307", "gemini-2.0-flash-001"]
    assert data.tasks is not None and len(set(data.tasks)) == 78
    # quality in [0, 1]: the one METEOR score of -0.033 is clipped to 0
    assert data.quality.min() == 0.0 and data.quality.max() <= 1.0
    np.testing.assert_allclose(data.quality.mean(axis=0), [0.523, 0.690], atol=5e-4)
    # the measured tokens priced with model_cost.json give the recorded USD cost
    assert data.input_tokens is not None and data.output_tokens is not None
    price_in = np.array([data.specs[m].input_price for m in data.llms])
    price_out = np.array([data.specs[m].output_price for m in data.llms])
    expected = (data.input_tokens * price_in + data.output_tokens * price_out) / 1e6
    np.testing.assert_allclose(data.cost, expected, rtol=1e-9)
    assert data.specs["gemini-2.0-flash-001"].input_price == pytest.approx(0.10)


def test_routerarena_format_is_detected_and_negative_scores_clipped(tmp_path: Path) -> None:
    rows = [
        ("Q1", "a", 1.0, 2e-5, "mmlu"),
        ("Q1", "b", -0.02, 1e-5, "mmlu"),
        ("Q2", "a", 0.4, 3e-5, "wmt"),
        ("Q2", "b", 0.7, 1e-5, "wmt"),
    ]
    df = pd.DataFrame(rows, columns=["question", "model", "score", "inference_cost_usd", "dataset"])
    path = tmp_path / "cached.csv"
    df.to_csv(path, index=False)
    data = load_routing_data(path)
    assert data.source == "routerarena" and data.tasks == ["mmlu", "wmt"]
    np.testing.assert_allclose(data.quality, [[1.0, 0.0], [0.4, 0.7]])
    np.testing.assert_allclose(data.cost, [[2e-5, 1e-5], [3e-5, 1e-5]])
    assert data.specs == {}  # no model_cost.json beside it
    df.drop(columns="score").to_csv(path, index=False)
    with pytest.raises(DataFormatError, match=r"missing \['score'\]"):
        load_routerarena(path)
