"""`MixLLMFeedbackHandler`: maps LangChain runs to the routing decisions made inside them.

Every :class:`~mixllm_langchain.MixLLMChat` carries one of these as a local callback, so the run
id of each routed call (invoke, ainvoke, stream, astream, batch) leads to its decision. Pass
another one, built on the same chat, in a chain's ``config={"callbacks": [...]}`` and it also sees
the chain's runs: feedback given on the run id of the whole chain (what a trace shows the user)
then reaches every routing decision made inside it.

Inside a LangGraph graph (an agent made with ``create_agent``), every routed call is also filed
under the graph's run id when the caller gave one (``agent.invoke(x, config={"run_id": rid})``),
with no handler in the config: :func:`graph_run_id` reads it from the running graph.

Outcomes (latency, tokens, cost, errors) are not recorded here: the core
:class:`~mixllm_core.Dispatcher` records every attempt as it ends.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from mixllm_core import FeedbackError, FeedbackResult, MixLLMRouter

__all__ = ["MixLLMFeedbackHandler", "RunLedger", "graph_run_id"]


class RunLedger:
    """Which routing decisions were made under which LangChain run (thread-safe, bounded).

    Args:
        max_runs: Runs remembered (oldest dropped first).
    """

    def __init__(self, max_runs: int = 100_000) -> None:
        self.max_runs = max_runs
        self._parents: OrderedDict[UUID, UUID | None] = OrderedDict()
        self._decisions: OrderedDict[UUID, list[str]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _trim(store: OrderedDict[Any, Any], limit: int) -> None:
        while len(store) > limit:
            store.popitem(last=False)

    def link(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        """Remember that ``run_id`` ran inside ``parent_run_id``."""
        with self._lock:
            self._parents[run_id] = parent_run_id
            self._trim(self._parents, self.max_runs)

    def add(self, run_id: UUID, parent_run_id: UUID | None, decision_id: str) -> None:
        """File ``decision_id`` under ``run_id`` and every run it ran inside."""
        with self._lock:
            if run_id not in self._parents:
                self._parents[run_id] = parent_run_id
            node: UUID | None = run_id
            seen: set[UUID] = set()
            while node is not None and node not in seen:
                seen.add(node)
                ids = self._decisions.setdefault(node, [])
                if decision_id not in ids:
                    ids.append(decision_id)
                node = self._parents.get(node)
            self._trim(self._decisions, self.max_runs)

    def decisions(self, run_id: UUID) -> list[str]:
        """Decision ids made under ``run_id`` (empty when none is known)."""
        with self._lock:
            return list(self._decisions.get(run_id, ()))


def graph_run_id() -> UUID | None:
    """The run id the caller gave the LangGraph graph running this code, if any.

    LangGraph keeps ``config["run_id"]`` of a graph's invocation in its runtime; a node (and the
    models it calls) can read it. None outside a graph, when the caller gave no run id, or when
    LangGraph is not installed.
    """
    try:
        from langgraph.runtime import get_runtime
    except ImportError:  # pragma: no cover - langgraph comes with the agents extra
        return None
    try:
        runtime = get_runtime()
    except (RuntimeError, KeyError):  # not inside a graph
        return None
    run_id = getattr(getattr(runtime, "execution_info", None), "run_id", None)
    if run_id is None:
        return None
    try:
        return run_id if isinstance(run_id, UUID) else UUID(str(run_id))
    except ValueError:
        return None


def _as_uuid(run_id: UUID | str) -> UUID:
    if isinstance(run_id, UUID):
        return run_id
    try:
        return UUID(str(run_id))
    except ValueError as exc:
        raise FeedbackError(f"A run id must be a UUID, got {run_id!r}.") from exc


class MixLLMFeedbackHandler(BaseCallbackHandler):
    """Maps run ids (a chat model's, or a chain's around it) to routing decision ids.

    Args:
        target: A :class:`~mixllm_langchain.MixLLMChat` (the handler then shares the chat's run
            ledger, so the chat's ``feedback(run_id)`` sees what this handler saw) or a bare
            :class:`~mixllm_core.MixLLMRouter`.

    Example:
        >>> from mixllm_langchain import MixLLMChat
        >>> from mixllm_langchain.testing import ScriptedChatModel
        >>> from mixllm_core.testing import HashingEncoder
        >>> chat = MixLLMChat(models={"a": ScriptedChatModel(model_name="a")},
        ...                   encoder=HashingEncoder())
        >>> handler = MixLLMFeedbackHandler(chat)
        >>> reply = chat.invoke("hi", config={"callbacks": [handler]})
        >>> run_id = reply.id.removeprefix("lc_run--").rsplit("-", 1)[0]
        >>> [r.applied for r in handler.feedback(run_id, thumbs=True)]
        [True]
    """

    run_inline = True  # async runs: the run is mapped before ainvoke() returns

    def __init__(self, target: Any) -> None:
        super().__init__()
        if isinstance(target, MixLLMRouter):
            self.router: MixLLMRouter = target
            self.ledger = RunLedger()
        elif isinstance(getattr(target, "router", None), MixLLMRouter) and isinstance(
            getattr(target, "ledger", None), RunLedger
        ):
            self.router = target.router
            self.ledger = target.ledger
        else:
            raise TypeError(
                f"MixLLMFeedbackHandler takes a MixLLMChat or a MixLLMRouter, got "
                f"{type(target).__name__}."
            )

    # ------------------------------------------------------------------ run tree
    def _link(self, run_id: UUID, parent_run_id: UUID | None = None, **_: Any) -> None:
        self.ledger.link(run_id, parent_run_id)

    def on_chain_start(
        self,
        serialized: Any,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._link(run_id, parent_run_id)

    def on_tool_start(
        self,
        serialized: Any,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._link(run_id, parent_run_id)

    def on_chat_model_start(
        self,
        serialized: Any,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._link(run_id, parent_run_id)

    def on_llm_start(
        self,
        serialized: Any,
        prompts: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._link(run_id, parent_run_id)

    # ------------------------------------------------------------------ routed runs
    def on_llm_end(
        self, response: LLMResult, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        """File the decision behind each routed generation under this run and its parents."""
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                meta = (getattr(message, "response_metadata", None) or {}).get("mixllm")
                if isinstance(meta, dict) and "decision_id" in meta:  # else: another model
                    self.ledger.add(run_id, parent_run_id, meta["decision_id"])

    # ------------------------------------------------------------------ feedback
    def decisions(self, run_id: UUID | str) -> list[str]:
        """Decision ids of the routed calls made under ``run_id`` (a model's run or a chain's)."""
        return self.ledger.decisions(_as_uuid(run_id))

    def feedback(
        self, run_id: UUID | str, *, score: float | None = None, thumbs: bool | None = None
    ) -> list[FeedbackResult]:
        """Give every routed call under ``run_id`` a score in [0, 1] or a thumbs up/down.

        Raises:
            FeedbackError: no routed call is known under ``run_id``, or bad feedback.
        """
        ids = self.decisions(run_id)
        if not ids:
            raise FeedbackError(
                f"No routed call is known under run id {str(run_id)!r}: pass the run id of a "
                "MixLLMChat call (or of a chain run while this handler was in its callbacks)."
            )
        return [self.router.feedback(d, score=score, thumbs=thumbs) for d in ids]
