"""Shared fixtures. Tests run offline; those that read ../shared/data skip when it is absent."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from mixllm_core import LLMSpec, MixLLMRouter, RoutingData
from mixllm_core.encoders import TaggedEncoder
from mixllm_core.testing import HashingEncoder, make_synthetic_world

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ROUTERBENCH = SHARED_DATA / "routerbench_subset" / "routerbench_arc_mbpp_winogrande.parquet"
LLMROUTER = SHARED_DATA / "llmrouter_nim" / "llmrouter_dcrouter_scores.parquet"


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """The script ``benchmarks/<name>.py`` as a module (registered as ``<name>_bench``); while it
    loads, ``benchmarks/`` leads ``sys.path``, as when it runs as a script, so that it can import
    its sibling scripts."""
    spec = importlib.util.spec_from_file_location(f"{name}_bench", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[f"{name}_bench"] = module
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def require_shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(
            f"{path} is absent: ../shared/data is only beside the repository in the team's "
            "checkouts and CI, not in a user's fresh clone."
        )
    return path


def specialist_world(n_queries: int = 300, *, seed: int = 0) -> RoutingData:
    """Two LLMs at the same price, each right on one query family and wrong on the other.

    The queries are the synthetic world's code and writing queries; ``"coder"`` answers code
    queries well (quality 1) and writing queries badly (0), ``"writer"`` the other way round.
    Prices are equal, so a router that learned anything sends every query to the specialist of
    its family, at any λ > 0: the answer is known before the router runs.

    The split is the synthetic world's (about 20% test), so held-out queries are new texts.
    """
    world = make_synthetic_world(4 * n_queries, seed=seed)
    keep = [i for i, t in enumerate(world.tasks or []) if t in ("code", "writing")][:n_queries]
    tasks = [(world.tasks or [])[i] for i in keep]
    is_code = np.array([t == "code" for t in tasks])
    return RoutingData(
        queries=[world.queries[i] for i in keep],
        llms=["coder", "writer"],
        quality=np.column_stack([is_code, ~is_code]).astype(float),
        cost=np.full((len(keep), 2), 1e-4),
        sample_ids=[world.sample_ids[i] for i in keep],
        tasks=tasks,
        split=[(world.split or [])[i] for i in keep],
        specs={name: LLMSpec(name, 1.0, 1.0) for name in ("coder", "writer")},
        source="specialists",
    )


def specialist_of(task: str) -> str:
    """The LLM of :func:`specialist_world` that answers ``task`` queries well."""
    return {"code": "coder", "writing": "writer"}[task]


def write_long_csv(data: RoutingData, path: Path) -> Path:
    """Write ``data`` as the generic long format (one row per query and LLM) that the CLI reads.

    The split is left out, so the CLI splits by its seed.
    """
    import pandas as pd

    assert data.cost is not None  # test data always has costs
    rows = [
        {"sample_id": sid, "query": q, "llm": llm, "quality": data.quality[i, j], "cost": cost}
        for i, (sid, q) in enumerate(zip(data.sample_ids, data.queries, strict=True))
        for j, (llm, cost) in enumerate(zip(data.llms, data.cost[i], strict=True))
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


#: A query the synthetic world's tagger cannot place, and what :func:`hint_router` picks for it at
#: λ = 1 with each task hint (None: no hint).
HINT_TEXT = "Hello there"
HINT_CHOICES = {"code": "coder-34b", "math": "math-pro", None: "mid-70b"}


def hint_router() -> MixLLMRouter:
    """A router with tag features (it takes task hints), fitted on the synthetic world."""
    enc = TaggedEncoder(HashingEncoder(), fit_with_router=True, seed=0)
    return MixLLMRouter(encoder=enc, seed=0).fit(make_synthetic_world(400, seed=0))
