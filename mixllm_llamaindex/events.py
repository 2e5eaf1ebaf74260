"""`RoutingDecisionEvent`: each routing decision, as a LlamaIndex instrumentation event.

Every child the adapter is about to call (the first choice and every fallback) is announced through
``llama_index.core.instrumentation``, so an event handler attached to the root dispatcher sees which
LLM was chosen, why (the per-candidate breakdown) and for which operation.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.instrumentation.events import BaseEvent

# defined in llama-index-core's own instrumentation package; the core module re-exports it implicitly
from llama_index_instrumentation import get_dispatcher

__all__ = ["RoutingDecisionEvent", "dispatcher"]

dispatcher = get_dispatcher(__name__)


class RoutingDecisionEvent(BaseEvent):
    """A routing decision made by :class:`~mixllm_llamaindex.MixLLM`.

    Attributes:
        decision_id: Id to give feedback on (``MixLLM.feedback``).
        llm: The child LLM about to be called.
        operation: The LLM method routed (``"chat"``, ``"astream_complete"``, ...).
        attempt: 1 for the first choice, 2 and up for fallbacks after a child failed.
        decision: ``RoutingDecision.to_dict()``: λ and every candidate's quality, cost, wait, score.

    Example:
        >>> from llama_index.core.instrumentation import get_dispatcher
        >>> from llama_index.core.instrumentation.event_handlers import BaseEventHandler
        >>> class Seen(BaseEventHandler):
        ...     def handle(self, event, **kwargs):
        ...         if isinstance(event, RoutingDecisionEvent):
        ...             print(event.llm)
        >>> get_dispatcher().add_event_handler(Seen())  # doctest: +SKIP
    """

    decision_id: str
    llm: str
    operation: str
    attempt: int = 1
    decision: dict[str, Any]

    @classmethod
    def class_name(cls) -> str:
        return "MixLLMRoutingDecisionEvent"
