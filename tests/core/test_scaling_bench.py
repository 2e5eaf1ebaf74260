"""benchmarks/scaling.py runs end to end at a tiny size and its data and estimates are right.

Only the script's mechanics are checked here (timings are the script's job, never a test's).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def scaling() -> ModuleType:
    return load_benchmark("scaling")


def test_world_is_seeded_and_well_formed(scaling: ModuleType) -> None:
    a = scaling.make_world(300, 7, seed=3)
    b = scaling.make_world(300, 7, seed=3)
    c = scaling.make_world(300, 7, seed=4)
    assert a.queries == b.queries and np.array_equal(a.quality, b.quality)
    assert a.queries != c.queries
    assert len(a) == 300 and len(a.llms) == len(set(a.llms)) == 7
    assert set(np.unique(a.quality)) <= {0.0, 1.0}
    assert a.cost is not None and (a.cost > 0).all()
    lengths = np.array([len(q) for q in a.queries])
    # RouterBench-like lengths: many prompts fill the static encoder's 1,000-character window
    assert 300 < np.median(lengths) < 1500 and (lengths > 1000).mean() > 0.1
    # the LLMs differ in quality (the router has something to learn)
    assert a.quality.mean(axis=0).max() - a.quality.mean(axis=0).min() > 0.1


def test_extrapolation_is_a_line_in_the_llm_count(scaling: ModuleType) -> None:
    cells = {
        "10x1": {"llms": 10, "rows": 1, "fit_cpu_s": 12.0},
        "30x1": {"llms": 30, "rows": 1, "fit_cpu_s": 32.0},
        "100x1": {"llms": 100, "rows": 1, "skipped": "slow"},
        "10x2": {"llms": 10, "rows": 2, "fit_cpu_s": 50.0},
        "30x2": {"llms": 30, "rows": 2, "skipped": "slow"},
    }
    out = scaling.extrapolate(cells)
    assert set(out) == {"100x1"}  # one measured cell at 2 rows: no estimate
    assert out["100x1"]["fit_cpu_s_estimate"] == pytest.approx(102.0)
    assert out["100x1"]["per_llm_cpu_s"] == pytest.approx(1.0)


def test_tiny_run_writes_every_cell(scaling: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "scaling.json"
    argv = ["--llms", "2", "--rows", "60", "--n-timed", "4", "--n-batch", "3", "--inline"]
    result = scaling.main([*argv, "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    cells = result["cells"]
    assert list(cells) == ["2x60", "budget", "baseline-again"]
    assert cells["budget"]["llms"] == scaling.BUDGET_LLMS
    for cell in cells.values():
        assert cell["fit_s"] > 0 and cell["fit_peak_mb"] > 0
        for key in ("route", "route_cpu", "route_pre", "predict"):
            assert 0 < cell[key]["p50_ms"] <= cell[key]["p95_ms"] <= cell[key]["p99_ms"]
        assert cell["n_timed"] == 4 and cell["n_batch"] == 3
        assert cell["saved_mb"] > 0
        # the training features the pool keeps: one float32 array of rows x dim, counted once
        kept = cell["pool_keeps_mb"]
        expected = (cell["rows"] * cell["dim"] * 4 + cell["llms"] * cell["rows"] * 8) / 2**20
        assert kept["features"] == pytest.approx(expected)
        assert kept["data_matrices"] > 0 and kept["data_strings"] > 0
    budget = result["budget"]
    assert budget["route_p50_ms_cpu"] == cells["budget"]["route_cpu"]["p50_ms"]
    assert budget["pass_cpu"] == (budget["route_p50_ms_cpu"] <= 1.0)


def test_grid_only_and_the_plot(scaling: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "scaling.json"
    argv = ["--llms", "2", "3", "--rows", "60", "--n-timed", "4", "--n-batch", "3", "--inline"]
    result = scaling.main([*argv, "--grid-only", "--out", str(out)])
    assert list(result["cells"]) == ["2x60", "3x60"]  # no budget row, no baseline again
    plot = load_benchmark("scaling_plot")
    now, before = plot.load_cells([out])
    assert set(now) == {(2, 60), (3, 60)} and not before
    plot.main([str(out), "--out", str(tmp_path / "scaling.png")])
    assert (tmp_path / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
