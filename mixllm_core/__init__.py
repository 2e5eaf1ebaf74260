"""mixllm_core: the MixLLM router (framework-free; importing it loads no model and no torch).

The public API is ``__all__`` below. More specialised parts live in their own modules:
:mod:`mixllm_core.encoders` (every encoder, the tagger), :mod:`mixllm_core.data` (the individual
loaders), :mod:`mixllm_core.errors` (the whole exception tree), :mod:`mixllm_core.testing` (test
doubles) and :mod:`mixllm_core.experiments` (bench, replays, simulation, synthetic world).

Example:
    >>> from mixllm_core import LLMSpec, MixLLMRouter
    >>> from mixllm_core.testing import HashingEncoder
    >>> router = MixLLMRouter([LLMSpec("small", 0.15, 0.6), LLMSpec("large", 2.5, 10.0)],
    ...                       encoder=HashingEncoder())
    >>> router.route("Summarise this paragraph.", lam=0.5).llm
    'small'
"""

from __future__ import annotations

import importlib
import warnings
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .data import RoutingData, load_routing_data
from .decision import CandidateScore, DecisionPolicy, RoutingDecision
from .dispatch.dispatcher import AllCandidatesFailedError, Dispatcher
from .dispatch.retry import RetryPolicy
from .encoders import QueryEncoder, SentenceEncoder, StaticEncoder
from .errors import (
    ConfigError,
    CorruptStateError,
    DataFormatError,
    FeedbackError,
    LogUnavailableError,
    MixLLMError,
)
from .factory import build_router
from .latency import LatencyTracker
from .router import FeedbackResult, MixLLMRouter
from .shared_state import SharedState
from .snapshot import RefitGuard, RefitOutcome
from .spec import LLMSpec

if TYPE_CHECKING:
    from .sqllog import SQLLog

try:
    __version__ = version("mixllm")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
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

#: Names that 0.1 exported from ``mixllm_core`` and that now live in a submodule; importing them
#: from here still works for one release, with a DeprecationWarning naming the new home.
_MOVED = {
    "Attempt": "mixllm_core.dispatch",
    "BudgetTracker": "mixllm_core.decision",
    "CallUsage": "mixllm_core.spec",
    "CostPredictor": "mixllm_core.predictors",
    "DecisionMaker": "mixllm_core.decision",
    "DispatchResult": "mixllm_core.dispatch",
    "EmptyPoolError": "mixllm_core.errors",
    "MissingDependencyError": "mixllm_core.errors",
    "NotFittedError": "mixllm_core.errors",
    "OnlineHead": "mixllm_core.online",
    "OnlineHeads": "mixllm_core.online",
    "OnnxEncoder": "mixllm_core.encoders",
    "PredictorBank": "mixllm_core.predictors",
    "QualityPredictor": "mixllm_core.predictors",
    "TaggedEncoder": "mixllm_core.encoders",
    "Tagger": "mixllm_core.encoders",
    "UnknownLLMError": "mixllm_core.errors",
    "estimate_tokens": "mixllm_core.text",
    "load_generic": "mixllm_core.data",
    "load_llmrouter": "mixllm_core.data",
    "load_routerbench": "mixllm_core.data",
    "load_routerbench_hub": "mixllm_core.data",
    "make_synthetic_world": "mixllm_core.experiments.synthetic",
    "price_call": "mixllm_core.dispatch",
    "query_text": "mixllm_core.text",
}


#: Exported names whose module loads an optional dependency: imported on first use, so that
#: ``import mixllm_core`` loads no SQLAlchemy.
_LAZY = {"SQLLog": "mixllm_core.sqllog"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    home = _MOVED.get(name)
    if home is None:
        raise AttributeError(f"module 'mixllm_core' has no attribute {name!r}")
    warnings.warn(
        f"mixllm_core.{name} moved to {home}.{name}; the old name goes away in 0.3.",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(home), name)
