"""`MixLLMSelector`: a LlamaIndex selector that routes among query engines by cost and quality.

LlamaIndex's ``RouterQueryEngine`` asks a selector which of its query engines answers a query.
When the engines differ by the LLM behind them (the same index queried through a small and a large
model, say), :class:`MixLLMSelector` makes that choice the way :class:`~mixllm_llamaindex.MixLLM`
chooses a child: the router predicts each engine's LLM's quality and cost for the query and picks
the best trade-off at ``lam``. Each engine's tool is mapped to an LLM of the router by its
``name``::

    tools = [QueryEngineTool.from_defaults(small_engine, name="small", description="..."),
             QueryEngineTool.from_defaults(large_engine, name="large", description="...")]
    selector = MixLLMSelector({"small": "openai:gpt-4o-mini", "large": "openai:gpt-4o"})
    engine = RouterQueryEngine(selector=selector, query_engine_tools=tools)

Every choice is a logged routing decision (the router's log, a ``RoutingDecisionEvent`` with
``operation="select"``, and this module's logger), so feedback on the answer reaches the
router: ``selector.feedback(response, score=...)`` or ``with selector.collect() as answer``.
The selector chooses; it does not see the chosen engine's calls, so their cost is not recorded
on its router (route the engine's LLM through a ``MixLLM`` for that).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from llama_index.core.base.base_selector import (
    BaseSelector,
    MultiSelection,
    SelectorResult,
    SingleSelection,
)
from llama_index.core.prompts.mixin import PromptDictType
from llama_index.core.schema import QueryBundle
from llama_index.core.tools.types import ToolMetadata

from mixllm_core import ConfigError, FeedbackError, FeedbackResult, MixLLMRouter, QueryEncoder
from mixllm_core.collect import AnswerDecisions, collecting, notify
from mixllm_core.decision import RoutingDecision
from mixllm_core.factory import Price, policy_override, router_for

from .events import RoutingDecisionEvent, dispatcher

__all__ = ["MixLLMSelector", "RoutedSelection"]

logger = logging.getLogger(__name__)


class RoutedSelection(MultiSelection):
    """A selector result that remembers its routing decision (``decision_id``, ``llm``).

    ``RouterQueryEngine`` puts it in ``response.metadata["selector_result"]``, which is how
    :meth:`MixLLMSelector.feedback` finds the decision behind a response.
    """

    decision_id: str
    llm: str


def _reason(decision: RoutingDecision, tool: str) -> str:
    chosen = decision.chosen
    return (
        f"mixllm chose {tool!r} ({decision.llm}): predicted quality {chosen.quality:.2f}, "
        f"cost ${chosen.cost:.6f}, score {chosen.score:.3f} at lam={decision.lam:g}"
    )


class MixLLMSelector(BaseSelector):
    """Selects the query engine whose LLM gives the best quality/cost trade-off for a query.

    Args:
        tools: Which router LLM each tool's engine runs on: ``{tool name: LLM name}``, or a list
            of names when each tool is named after its LLM (unnamed choices are then taken in
            order). None: the tools are named after the ``router``'s LLMs. LLM names of the form
            ``"provider:model"`` are priced from the price table (:mod:`mixllm_core.prices`).
        router: A trained :class:`~mixllm_core.MixLLMRouter` whose pool is exactly the LLMs of
            ``tools``. None: a cold-start router that learns from :meth:`feedback`.
        prices: For a cold-start router, per LLM ``(input, output)`` USD per million tokens (or
            an ``LLMSpec``); an LLM without one and not named ``"provider:model"`` costs 0, with
            an :class:`~mixllm_core.errors.UnpricedLLMWarning`.
        lam: Quality weight λ (larger: quality first). None: the router's own.
        alpha: Exploration weight. None: the router's own.
        encoder: Query encoder of a cold-start router (default: ``StaticEncoder``).
        seed: Seed of a cold-start router.

    Raises:
        ConfigError: no tool, a tool mapped to no LLM, or a router whose pool differs.

    Example:
        >>> from mixllm_core.testing import HashingEncoder
        >>> selector = MixLLMSelector({"quick": "small", "thorough": "large"},
        ...     prices={"small": (0.15, 0.6), "large": (2.5, 10.0)}, lam=0.5,
        ...     encoder=HashingEncoder())
        >>> result = selector.select(
        ...     [ToolMetadata(name="quick", description="Answers from the docs, fast"),
        ...      ToolMetadata(name="thorough", description="Answers from the docs, carefully")],
        ...     "What does MixLLM trade off?")
        >>> result.ind, result.llm
        (0, 'small')
        >>> selector.feedback(result, thumbs=True)[0].applied
        True
    """

    def __init__(
        self,
        tools: Mapping[str, str] | Sequence[str] | None = None,
        *,
        router: MixLLMRouter | None = None,
        prices: Mapping[str, Price] | None = None,
        lam: float | None = None,
        alpha: float | None = None,
        encoder: QueryEncoder | None = None,
        seed: int = 0,
    ) -> None:
        if tools is None:
            if router is None:
                raise ConfigError(
                    "MixLLMSelector needs tools={tool name: LLM name} or a trained router= "
                    "(whose LLM names are then the tool names)."
                )
            tools = list(router.llms)
        self._ordered = not isinstance(tools, Mapping)
        mapping = {t: t for t in tools} if not isinstance(tools, Mapping) else dict(tools)
        bad = {t: llm for t, llm in mapping.items() if not isinstance(llm, str) or not llm}
        if not mapping or bad or isinstance(tools, str):
            raise ConfigError(
                "tools must map each tool name to an LLM name ({'quick': 'small', ...}) or list "
                f"the LLM names; got {tools!r}."
            )
        self._tools = mapping
        pool = dict.fromkeys(mapping.values())
        self._router = router_for(
            pool, router=router, prices=prices, lam=lam, alpha=alpha, encoder=encoder, seed=seed
        )
        self._policy = policy_override(self._router, lam=lam, alpha=alpha).get("policy")

    @property
    def router(self) -> MixLLMRouter:
        """The router behind every choice (predictions, feedback, log)."""
        return self._router

    @property
    def tools(self) -> dict[str, str]:
        """``{tool name: LLM name}``."""
        return dict(self._tools)

    def _get_prompts(self) -> PromptDictType:
        return {}

    def _update_prompts(self, prompts_dict: PromptDictType) -> None:
        """A selector without prompts: nothing to update."""

    # ------------------------------------------------------------------ choosing
    def _llms_of(self, choices: Sequence[ToolMetadata]) -> list[str]:
        names = list(self._tools)
        llms = []
        for i, choice in enumerate(choices):
            tool = choice.name
            if tool is None and self._ordered and i < len(names):
                tool = names[i]
            if tool not in self._tools:
                raise ConfigError(
                    f"Choice {i} ({tool or choice.description!r}) is not a tool this selector "
                    f"knows; the tools are {sorted(self._tools)}. Name each QueryEngineTool "
                    "after a key of tools=."
                )
            llms.append(self._tools[tool])
        twice = sorted({llm for llm in llms if llms.count(llm) > 1})
        if twice:
            raise ConfigError(
                f"Several choices run on the same LLM {twice}: the router tells engines apart "
                "only by their LLM. Give each engine its own LLM name in tools=."
            )
        return llms

    def _select(self, choices: Sequence[ToolMetadata], query: QueryBundle) -> SelectorResult:
        llms = self._llms_of(choices)
        others = [name for name in self._router.llms if name not in llms]
        decision = self._router.route(query.query_str, exclude=others, policy=self._policy)
        index = llms.index(decision.llm)
        tool = choices[index].name or list(self._tools)[index]
        reason = _reason(decision, tool)
        logger.info("%s (decision %s)", reason, decision.decision_id)
        dispatcher.event(
            RoutingDecisionEvent(
                decision_id=decision.decision_id,
                llm=decision.llm,
                operation="select",
                decision=decision.to_dict(),
            )
        )
        notify(self, decision)
        return RoutedSelection(
            selections=[SingleSelection(index=index, reason=reason)],
            decision_id=decision.decision_id,
            llm=decision.llm,
        )

    async def _aselect(self, choices: Sequence[ToolMetadata], query: QueryBundle) -> SelectorResult:
        return self._select(choices, query)  # routing is local and fast: no I/O to await

    # ------------------------------------------------------------------ feedback
    def collect(self) -> AbstractContextManager[AnswerDecisions]:
        """Collect the choices made inside a ``with`` block, for feedback per answer."""
        return collecting(self)

    def feedback(
        self,
        target: Any,
        *,
        score: float | None = None,
        thumbs: bool | None = None,
    ) -> list[FeedbackResult]:
        """Tell the router how good the chosen engine's answer was.

        Args:
            target: The ``Response`` of a ``RouterQueryEngine`` using this selector, the
                :class:`RoutedSelection` that :meth:`select` returned, a decision id, or the
                answer of :meth:`collect`.
            score: A quality score in [0, 1], or
            thumbs: True (good) / False (bad). Give exactly one.

        Raises:
            FeedbackError: the target carries no decision of this selector, or the router
                rejects the feedback (already given, bad score).
        """
        if isinstance(target, AnswerDecisions):
            return target.feedback(score=score, thumbs=thumbs)
        if isinstance(target, str):
            return [self._router.feedback(target, score=score, thumbs=thumbs)]
        metadata = getattr(target, "metadata", None)
        if isinstance(metadata, Mapping):
            target = metadata.get("selector_result")
        if not isinstance(target, RoutedSelection):
            raise FeedbackError(
                f"{type(target).__name__} carries no decision of a MixLLMSelector; pass the "
                "RouterQueryEngine's response, the selection, a decision id, or the answer of "
                "selector.collect()."
            )
        return [self._router.feedback(target.decision_id, score=score, thumbs=thumbs)]
