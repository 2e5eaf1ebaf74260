"""mixllm_llamaindex: a LlamaIndex LLM that routes every call with MixLLM.

Public API::

    MixLLM                 the routing LLM (function-calling when every child is)
    MixLLMSelector         a RouterQueryEngine selector: the engine whose LLM is the best trade-off
    RoutedSelection        its result, carrying the routing decision
    AnswerDecisions        the decisions behind one answer, from ``MixLLM.collect()``
    RoutingDecisionEvent   the instrumentation event emitted for each routing decision
    __version__            the installed mixllm version

Offline test doubles live in :mod:`mixllm_llamaindex.testing` (``ScriptedLLM``, ``ToolLLM``).

Example:
    >>> from llama_index.core import Settings
    >>> Settings.llm = MixLLM(models={"small": small_llm, "big": big_llm},    # doctest: +SKIP
    ...                       prices={"small": (0.15, 0.6), "big": (2.5, 10.0)})
    >>> with Settings.llm.collect() as answer:                                # doctest: +SKIP
    ...     print(query_engine.query("What does MixLLM trade off?"))
    >>> answer.feedback(thumbs=True)                                          # doctest: +SKIP
"""

from __future__ import annotations

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    from mixllm_core.errors import MissingDependencyError

    raise MissingDependencyError(
        "mixllm_llamaindex needs llama-index-core: pip install 'mixllm[llamaindex]'"
    ) from exc

from mixllm_core import __version__

from .collect import AnswerDecisions
from .events import RoutingDecisionEvent
from .llms import MixLLM
from .selectors import MixLLMSelector, RoutedSelection

__all__ = [
    "AnswerDecisions",
    "MixLLM",
    "MixLLMSelector",
    "RoutedSelection",
    "RoutingDecisionEvent",
    "__version__",
]
