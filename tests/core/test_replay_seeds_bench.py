"""benchmarks/replay_seeds.py records which router it replayed, beside the AIQ per set and seed
(a tiny synthetic run, no shared data)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mixllm_core.experiments.synthetic import make_synthetic_world
from tests.conftest import load_benchmark, write_long_csv


def test_the_json_records_the_replayed_router(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replay = load_benchmark("replay_seeds")
    csv = write_long_csv(make_synthetic_world(150, seed=0), tmp_path / "world.csv")
    monkeypatch.setitem(replay.DATA, "world", str(csv))
    out = tmp_path / "replay.json"
    argv = ["replay_seeds.py", "--data", "world", "--seeds", "0", "--kinds", "none"]
    monkeypatch.setattr(sys, "argv", [*argv, "--router", "default", "--out", str(out)])
    replay.main()
    result = json.loads(out.read_text())
    assert result["args"]["router"] == "default"
    assert result["args"]["seeds"] == [0]
    assert 0 < result["aiq"]["world"]["0"]["none"] <= 1
