"""MixLLMSelector: a RouterQueryEngine choosing among query engines on different LLMs, offline.

Each engine is a SummaryIndex over the same documents answered by a ``MockLLM`` with its own
``max_tokens``, so the answer's length tells which engine answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core import Document, SummaryIndex
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RouterQueryEngine
from llama_index.core.tools import QueryEngineTool, ToolMetadata

from mixllm_core import ConfigError, FeedbackError
from mixllm_core.factory import build_router
from mixllm_core.testing import HashingEncoder
from mixllm_llamaindex import MixLLMSelector, RoutedSelection, RoutingDecisionEvent

#: tool name → (LLM name, price, words the engine's MockLLM answers with)
ENGINES = {
    "quick": ("small", (0.15, 0.6), 1),
    "balanced": ("medium", (1.0, 4.0), 2),
    "thorough": ("large", (5.0, 15.0), 3),
}
LLMS = {tool: llm for tool, (llm, _, _) in ENGINES.items()}
PRICES = {llm: price for llm, price, _ in ENGINES.values()}
DOCS = ["MixLLM routes each query to one of several LLMs, trading quality against cost."]
QUERIES = [
    "What does MixLLM trade off?",
    "How many LLMs can a pool hold?",
    "Summarise the routing idea in one line.",
    "Which LLM answers code questions?",
]


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    from pytest_socket import disable_socket, enable_socket

    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


def _tools(names: tuple[str, ...] = tuple(ENGINES)) -> list[QueryEngineTool]:
    index = SummaryIndex.from_documents([Document(text=t) for t in DOCS])
    return [
        QueryEngineTool(
            query_engine=index.as_query_engine(llm=MockLLM(max_tokens=ENGINES[n][2])),
            metadata=ToolMetadata(name=n, description=f"The documents, answered by {LLMS[n]}"),
        )
        for n in names
    ]


def _engine(selector: MixLLMSelector, names: tuple[str, ...] = tuple(ENGINES)) -> Any:
    return RouterQueryEngine(selector=selector, query_engine_tools=_tools(names), llm=MockLLM())


def _selector(**kwargs: Any) -> MixLLMSelector:
    kwargs.setdefault("prices", PRICES)
    return MixLLMSelector(LLMS, encoder=HashingEncoder(), alpha=0.0, **kwargs)


def _words(response: Any) -> int:
    return len(str(response).split())


def test_cost_first_picks_the_cheap_engine_and_quality_first_the_strong_one() -> None:
    for lam, tool in [(0.0, "quick"), (50.0, "thorough")]:
        engine = _engine(_selector(lam=lam))
        for query in QUERIES:
            response = engine.query(query)
            result = response.metadata["selector_result"]
            assert isinstance(result, RoutedSelection)
            assert list(ENGINES)[result.ind] == tool and result.llm == LLMS[tool]
            assert _words(response) == ENGINES[tool][2]  # that engine answered
            assert tool in result.reason and "predicted quality" in result.reason


def test_raising_lam_never_picks_a_cheaper_engine() -> None:
    order = [llm for llm, _, _ in ENGINES.values()]  # by price
    for query in QUERIES:
        chosen = [
            order.index(_selector(lam=lam).select([t.metadata for t in _tools()], query).llm)
            for lam in (0.0, 0.5, 1.0, 2.0, 5.0, 50.0)
        ]
        assert chosen == sorted(chosen), (query, chosen)


def test_the_decision_is_logged_announced_and_takes_feedback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[RoutingDecisionEvent] = []

    class Seen(BaseEventHandler):
        def handle(self, event: Any, **kwargs: Any) -> None:
            if isinstance(event, RoutingDecisionEvent):
                seen.append(event)

    handler = Seen()
    root = get_dispatcher()
    root.add_event_handler(handler)
    try:
        selector = _selector(lam=0.0)
        with caplog.at_level(logging.INFO, logger="mixllm_llamaindex.selectors"):
            response = _engine(selector).query(QUERIES[0])
    finally:
        root.event_handlers.remove(handler)
    result = response.metadata["selector_result"]
    assert [(e.decision_id, e.llm, e.operation) for e in seen] == [
        (result.decision_id, "small", "select")
    ]
    assert result.decision_id in caplog.text
    assert selector.router.decision_llm(result.decision_id) == "small"  # in the router's log
    [fed] = selector.feedback(response, score=0.2)
    assert fed.applied and fed.decision_id == result.decision_id
    assert selector.router.log.has_feedback(result.decision_id)
    with pytest.raises(FeedbackError):
        selector.feedback(result, thumbs=True)  # the same decision twice
    with pytest.raises(FeedbackError, match="carries no decision of a MixLLMSelector"):
        selector.feedback(object(), thumbs=True)


def test_thumbs_down_on_the_cheap_engine_moves_traffic_to_another() -> None:
    selector = _selector(lam=0.7)  # cold: the cheap engine wins every query by a small margin
    engine = _engine(selector)
    before = [engine.query(q).metadata["selector_result"].llm for q in QUERIES]
    assert before == ["small"] * len(QUERIES)
    for _ in range(5):
        for query in QUERIES:
            response = engine.query(query)
            good = response.metadata["selector_result"].llm != "small"
            selector.feedback(response, thumbs=good)
    after = [engine.query(q).metadata["selector_result"].llm for q in QUERIES]
    assert "small" not in after


async def test_async_query_routes_as_the_sync_one_and_collect_gathers_it() -> None:
    selector = _selector(lam=0.0)
    engine = _engine(selector)
    with selector.collect() as answer:
        responses = await asyncio.gather(*(engine.aquery(q) for q in QUERIES))
    assert [r.metadata["selector_result"].llm for r in responses] == ["small"] * len(QUERIES)
    assert all(_words(r) == 1 for r in responses)
    assert answer.llms == ["small"] * len(QUERIES)
    assert all(r.applied for r in answer.feedback(thumbs=True))


def test_only_the_engines_offered_are_candidates() -> None:
    selector = _selector(lam=0.0)  # knows three tools
    engine = _engine(selector, ("balanced", "thorough"))
    for query in QUERIES:
        result = engine.query(query).metadata["selector_result"]
        assert result.llm == "medium" and result.ind == 0


def test_a_trained_router_names_the_tools() -> None:
    router = build_router(list(PRICES), prices=PRICES, encoder=HashingEncoder(), alpha=0.0, lam=0.0)
    selector = MixLLMSelector(router=router)
    assert selector.tools == {llm: llm for llm in PRICES}
    choices = [ToolMetadata(name=llm, description=llm) for llm in PRICES]
    assert selector.select(choices, QUERIES[0]).llm == "small"
    # unnamed choices (plain descriptions) are taken in the order of the tools
    assert selector.select(["one", "two", "three"], QUERIES[0]).ind == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs tools="),
        ({"tools": {}}, "must map each tool name"),
        ({"tools": {"quick": ""}}, "must map each tool name"),
        ({"tools": LLMS, "router": build_router(["x", "y"], encoder=HashingEncoder())}, "must be"),
    ],
)
def test_bad_configurations_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MixLLMSelector(**kwargs)


def test_a_choice_the_selector_cannot_map_is_an_error() -> None:
    selector = _selector()
    unknown = [
        ToolMetadata(name="quick", description="a"),
        ToolMetadata(name="web", description="b"),
    ]
    with pytest.raises(ConfigError, match="'web'.*the tools are"):
        selector.select(unknown, QUERIES[0])
    two = {n: PRICES[n] for n in ("small", "large")}
    same = MixLLMSelector(
        {"a": "small", "b": "small", "c": "large"}, prices=two, encoder=HashingEncoder()
    )
    with pytest.raises(ConfigError, match="same LLM"):
        same.select(
            [ToolMetadata(name="a", description=""), ToolMetadata(name="b", description="")], "q"
        )
