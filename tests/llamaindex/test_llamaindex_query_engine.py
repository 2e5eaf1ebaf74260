"""MixLLM as ``Settings.llm`` of a query engine (real MiniLM embedding) and of a FunctionAgent."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.node_parser import SentenceSplitter
from llamaindex_helpers import make_mix

from mixllm_core import FeedbackError
from mixllm_llamaindex.testing import ScriptedLLM, ToolLLM

pytestmark = pytest.mark.slow  # the real MiniLM embedding

DOCS = [
    "MixLLM routes each query to one of several LLMs, trading predicted quality against cost.",
    "The router keeps learning after deployment from refined or binary user feedback.",
    "Latency enters the decision through the expected waiting time at each LLM.",
    "A new LLM can join the pool at run time; only its own predictors are trained.",
]


@pytest.fixture
def index(settings: Any) -> VectorStoreIndex:
    nodes = SentenceSplitter(chunk_size=64, chunk_overlap=0).get_nodes_from_documents(
        [Document(text=t) for t in DOCS]
    )
    return VectorStoreIndex(nodes)


@pytest.fixture
def children() -> dict[str, ScriptedLLM]:
    return {"small": ScriptedLLM(label="small"), "big": ScriptedLLM(label="big")}


def calls(children: dict[str, ScriptedLLM]) -> dict[str, int]:
    return {n: len(c.calls) for n, c in children.items()}


def test_sync_query_routes_and_feedback_reaches_every_decision(
    settings: Any, index: Any, children: Any
) -> None:
    settings.llm = llm = make_mix(children)
    engine = index.as_query_engine(response_mode="refine", similarity_top_k=3)
    with llm.collect() as answer:
        response = engine.query("How does MixLLM learn after deployment?")
    assert len(response.source_nodes) == 3
    assert len(answer) == 3 == sum(calls(children).values())  # one LLM call per node (refine)
    assert calls(children) == {n: answer.llms.count(n) for n in children}
    assert str(response) == f"{answer.llms[-1]}: an answer"
    results = answer.feedback(score=0.9)
    assert [r.decision_id for r in results] == answer.decision_ids
    assert all(r.applied and r.score == 0.9 for r in results)
    assert all(llm.router.log.has_feedback(i) for i in answer.decision_ids)
    with pytest.raises(FeedbackError, match="already received feedback"):
        answer.feedback(thumbs=True)


def test_streaming_query(settings: Any, index: Any, children: Any) -> None:
    settings.llm = llm = make_mix(children)
    engine = index.as_query_engine(streaming=True, similarity_top_k=2)
    with llm.collect() as answer:
        response = engine.query("What does the router trade off?")
        text = "".join(response.response_gen)
    assert text == "small: an answer"
    assert answer.llms == ["small"] and children["small"].calls == ["stream_complete"]
    assert answer.feedback(thumbs=True)[0].applied


async def test_async_query(settings: Any, index: Any, children: Any) -> None:
    settings.llm = llm = make_mix(children, prices={"small": (5.0, 15.0), "big": (0.1, 0.4)})
    engine = index.as_query_engine(similarity_top_k=2)
    with llm.collect() as answer:
        response = await engine.aquery("Can a new LLM join the pool?")
    assert str(response) == "big: an answer"
    assert answer.llms == ["big"] and children["big"].calls == ["complete"]
    assert not children["small"].calls


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")  # workflows inspects pydantic
async def test_function_agent_with_a_tool(settings: Any) -> None:
    tool_children = {n: ToolLLM(label=n, tool_args={"a": 6, "b": 7}) for n in ("small", "big")}
    settings.llm = llm = make_mix(tool_children)
    agent = FunctionAgent(tools=[multiply], llm=llm, system_prompt="Use the tools.")
    with llm.collect() as answer:
        result = await agent.run("What is 6 times 7?")
    assert str(result) == "small: the result is 42"
    assert answer.llms == ["small", "small"]  # the tool call, then the answer
    assert len(tool_children["small"].calls) == 2 and not tool_children["big"].calls
    assert [t.metadata.name for t in tool_children["small"].calls[0]["tools"]] == ["multiply"]
    assert len(answer.feedback(thumbs=False)) == 2
