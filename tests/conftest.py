"""Shared fixtures. Tests run offline; those that read ../shared/data skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ROUTERBENCH = SHARED_DATA / "routerbench_subset" / "routerbench_arc_mbpp_winogrande.parquet"
LLMROUTER = SHARED_DATA / "llmrouter_nim" / "llmrouter_dcrouter_scores.parquet"


def require_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(
            f"{path} is absent: ../shared/data is only beside the repository in the team's "
            "checkouts and CI, not in a user's fresh clone."
        )
    return path
