"""The public surface of ``mixllm_core``: the exported names, the deprecated 0.1 names, a cheap import.

Changing ``__all__`` is an API change: this test fails until the list below is updated with it.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import mixllm_core

EXPORTED = [
    "AllCandidatesFailedError",
    "CandidateScore",
    "ConfigError",
    "CorruptStateError",
    "DataFormatError",
    "DecisionPolicy",
    "Dispatcher",
    "FeedbackError",
    "FeedbackResult",
    "LLMSpec",
    "LatencyTracker",
    "LogUnavailableError",
    "MixLLMError",
    "MixLLMRouter",
    "QueryEncoder",
    "RefitGuard",
    "RefitOutcome",
    "RetryPolicy",
    "RoutingData",
    "RoutingDecision",
    "SQLLog",
    "SentenceEncoder",
    "SharedState",
    "StaticEncoder",
    "__version__",
    "build_router",
    "load_routing_data",
]


def test_all_is_pinned() -> None:
    assert sorted(mixllm_core.__all__) == EXPORTED
    assert len(set(mixllm_core.__all__)) == len(mixllm_core.__all__)  # no name listed twice


@pytest.mark.parametrize("name", EXPORTED)
def test_every_exported_name_resolves_without_a_warning(name: str) -> None:
    # filterwarnings = error: a DeprecationWarning here would fail the test
    value = getattr(mixllm_core, name)
    assert value is not None and name in vars(mixllm_core)  # defined, not served by __getattr__


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from mixllm_core import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == EXPORTED


def test_version_comes_from_the_installed_distribution() -> None:
    from importlib.metadata import version

    assert mixllm_core.__version__ == version("mixllm")


@pytest.mark.parametrize("name", sorted(mixllm_core._MOVED))
def test_a_moved_name_still_imports_with_a_warning_naming_its_new_module(name: str) -> None:
    home = mixllm_core._MOVED[name]
    assert name not in mixllm_core.__all__
    with pytest.warns(DeprecationWarning, match=rf"mixllm_core\.{name} moved to {home}\.{name}"):
        namespace: dict[str, object] = {}
        exec(f"from mixllm_core import {name}", namespace)
    assert namespace[name] is getattr(importlib.import_module(home), name)


def test_an_unknown_name_raises_attribute_error_without_a_warning() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchThing'"):
        _ = mixllm_core.NoSuchThing  # type: ignore[attr-defined]


def test_importing_the_package_loads_no_heavy_dependency() -> None:
    heavy = [
        "torch",
        "transformers",
        "sentence_transformers",
        "onnxruntime",
        "langchain_core",
        "llama_index",
        "sqlalchemy",  # SQLLog is exported but loads on first use
        "redis",
        "psycopg",
    ]
    code = f"import sys, mixllm_core; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
