"""The notebooks are committed as executed: every code cell run once, in order, with its outputs,
none an error, and the router in them uses the real default encoder, not a test double.

(CI also re-executes them: tests/langchain/test_notebook.py, tests/llamaindex/.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_executed_with_outputs(path: Path) -> None:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    outputs = [o for c in code for o in c["outputs"]]
    assert len(outputs) >= len(code) // 2, "outputs were stripped"
    assert [o for o in outputs if o["output_type"] == "error"] == []
    source = "".join("".join(c["source"]) for c in code)
    assert "HashingEncoder" not in source and "mixllm_core.testing" not in source


def test_there_are_notebooks() -> None:
    assert {p.name for p in NOTEBOOKS} >= {
        "langchain_quickstart.ipynb",
        "llamaindex_query_engine.ipynb",
    }
