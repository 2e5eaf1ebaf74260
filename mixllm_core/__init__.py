"""mixllm_core: the MixLLM router (framework-free; importing it loads no model and no torch).

Public API::

    LLMSpec, RoutingData, load_routing_data, MixLLMRouter, RoutingDecision, DecisionPolicy,
    SentenceEncoder, StaticEncoder, OnnxEncoder, TaggedEncoder, Tagger, QueryEncoder, QualityPredictor, CostPredictor, LatencyTracker, Dispatcher,
    make_synthetic_world, and the errors of :mod:`mixllm_core.errors`.
"""

from __future__ import annotations

from .data import (
    RoutingData,
    estimate_tokens,
    load_generic,
    load_llmrouter,
    load_routerbench,
    load_routerbench_hub,
    load_routing_data,
)
from .decision import BudgetTracker, CandidateScore, DecisionMaker, DecisionPolicy, RoutingDecision
from .dispatch import (
    AllCandidatesFailedError,
    Attempt,
    CallUsage,
    Dispatcher,
    DispatchResult,
    price_call,
)
from .encoders import (
    OnnxEncoder,
    QueryEncoder,
    SentenceEncoder,
    StaticEncoder,
    TaggedEncoder,
    Tagger,
)
from .errors import (
    ConfigError,
    CorruptStateError,
    DataFormatError,
    EmptyPoolError,
    FeedbackError,
    MissingDependencyError,
    MixLLMError,
    NotFittedError,
    UnknownLLMError,
)
from .experiments.synthetic import make_synthetic_world
from .latency import LatencyTracker
from .online import OnlineHead, OnlineHeads
from .predictors import CostPredictor, PredictorBank, QualityPredictor
from .router import FeedbackResult, MixLLMRouter, query_text
from .spec import LLMSpec

__version__ = "0.1.0"

__all__ = [
    "AllCandidatesFailedError",
    "Attempt",
    "BudgetTracker",
    "CallUsage",
    "CandidateScore",
    "ConfigError",
    "CorruptStateError",
    "CostPredictor",
    "DataFormatError",
    "DecisionMaker",
    "DecisionPolicy",
    "DispatchResult",
    "Dispatcher",
    "EmptyPoolError",
    "FeedbackError",
    "FeedbackResult",
    "LLMSpec",
    "LatencyTracker",
    "MissingDependencyError",
    "MixLLMError",
    "MixLLMRouter",
    "NotFittedError",
    "OnlineHead",
    "OnlineHeads",
    "OnnxEncoder",
    "PredictorBank",
    "QualityPredictor",
    "QueryEncoder",
    "RoutingData",
    "RoutingDecision",
    "SentenceEncoder",
    "StaticEncoder",
    "TaggedEncoder",
    "Tagger",
    "UnknownLLMError",
    "estimate_tokens",
    "load_generic",
    "load_llmrouter",
    "load_routerbench",
    "load_routerbench_hub",
    "load_routing_data",
    "make_synthetic_world",
    "price_call",
    "query_text",
]
