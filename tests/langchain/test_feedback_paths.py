"""Feedback from any chain reaches the routing decision behind the answer.

Three ways back from an answer that no longer carries ``response_metadata["mixllm"]`` (an output
parser returned a string): the text itself, a ``collect()`` block around the chain, and the run id
of the chain (or of an agent) given in its config. Each test checks that the feedback reaches the
decision of the child that answered and moves that child's online prediction the right way.
"""

from __future__ import annotations

import asyncio
import re
import uuid
import warnings
from pathlib import Path

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnableParallel
from langchain_helpers import make_chat

from mixllm_core import FeedbackError
from mixllm_langchain import MixLLMChat, MixLLMFeedbackHandler

ROOT = Path(__file__).resolve().parents[2]
PROMPT = ChatPromptTemplate.from_messages([("user", "Answer briefly: {question}")])
QUESTION = {"question": "What is the capital of France?"}


def _chain(chat: MixLLMChat):  # type: ignore[no-untyped-def]
    return PROMPT | chat | StrOutputParser()


def _quality(chat: MixLLMChat, llm: str, question: str = QUESTION["question"]) -> float:
    """The router's predicted quality of ``llm`` for the prompt the chain sends."""
    assert chat.router is not None
    text = f"Answer briefly: {question}"
    predicted = chat.router.predict([text])
    return float(predicted["quality"][0, list(predicted["llms"]).index(llm)])


# ---------------------------------------------------------------------- the text a parser returned


def test_feedback_on_the_text_a_parser_returned_reaches_its_decision() -> None:
    chat = make_chat(lam=0.0)
    text = _chain(chat).invoke(QUESTION)
    assert isinstance(text, str) and text.startswith("cheap: ")
    before = _quality(chat, "cheap")
    (result,) = chat.feedback(text, thumbs=False)
    assert result.llm == "cheap" and result.applied and result.score == 0.0
    assert _quality(chat, "cheap") < before - 0.05  # a thumbs down lowers it for this prompt
    with pytest.raises(FeedbackError, match="already received feedback"):
        chat.feedback(text, thumbs=True)


def test_feedback_on_a_streamed_text_reaches_its_decision() -> None:
    chat = make_chat(lam=0.0)
    text = "".join(_chain(chat).stream(QUESTION))
    (result,) = chat.feedback(text, score=1.0)
    assert result.llm == "cheap" and result.applied


def test_the_same_text_twice_is_ambiguous_and_says_what_to_do_instead() -> None:
    chat = make_chat(lam=0.0)
    first, second = _chain(chat).invoke(QUESTION), _chain(chat).invoke(QUESTION)
    assert first == second
    with pytest.raises(FeedbackError, match=r"2 recent answers.*collect\(\).*run id"):
        chat.feedback(first, thumbs=True)


def test_an_unknown_text_names_collect_and_run_ids() -> None:
    chat = make_chat()
    with pytest.raises(FeedbackError, match=r"'small says hi' is not a decision id.*collect"):
        chat.feedback("small says hi", thumbs=True)
    with pytest.raises(FeedbackError, match="collect"):
        chat.feedback({"answer": 1}, thumbs=True)  # type: ignore[arg-type]


def test_answer_texts_are_bounded() -> None:
    chat = make_chat(lam=0.0)
    chat._answers.max_answers = 2
    texts = [_chain(chat).invoke({"question": f"question {i}"}) for i in range(3)]
    with pytest.raises(FeedbackError, match="last 2 answers"):
        chat.feedback(texts[0], thumbs=True)
    assert chat.feedback(texts[2], thumbs=True)[0].applied


# ---------------------------------------------------------------------- collect()


def test_collect_gathers_every_call_of_a_chain() -> None:
    chat = make_chat(lam=0.0)
    twice = PROMPT | chat | StrOutputParser() | RunnableLambda(lambda t: f"Rephrase: {t}") | chat
    with chat.collect() as answer:
        twice.invoke(QUESTION)
    assert answer.llms == ["cheap", "cheap"]
    before = _quality(chat, "cheap")
    results = answer.feedback(thumbs=True)
    assert [r.decision_id for r in results] == answer.decision_ids
    assert all(r.applied and r.llm == "cheap" for r in results)
    assert _quality(chat, "cheap") > before
    with pytest.raises(FeedbackError, match="already received feedback"):
        chat.feedback(answer, thumbs=True)


def test_collect_follows_batch_threads_and_streams() -> None:
    chat = make_chat(lam=0.0)
    questions = [{"question": f"q{i}"} for i in range(3)]
    with chat.collect() as batched:
        _chain(chat).batch(questions)
    with chat.collect() as streamed:
        for _ in _chain(chat).stream(QUESTION):
            pass
    assert len(batched) == 3 and len(set(batched.decision_ids)) == 3
    assert len(streamed) == 1 and not set(streamed.decision_ids) & set(batched.decision_ids)
    with chat.collect() as empty:
        pass
    with pytest.raises(FeedbackError, match="No routing decision"):
        empty.feedback(thumbs=True)


async def test_collect_keeps_concurrent_async_answers_apart() -> None:
    chat = make_chat(lam=0.0)

    async def one(question: str) -> list[str]:
        with chat.collect() as answer:
            await _chain(chat).ainvoke({"question": question})
        return answer.decision_ids

    first, second = await asyncio.gather(one("a"), one("b"))
    assert len(first) == len(second) == 1 and first != second
    with chat.collect() as outer, chat.collect() as inner:
        await _chain(chat).ainvoke(QUESTION)
    assert outer.decision_ids == inner.decision_ids and len(outer) == 1


# ---------------------------------------------------------------------- run ids


def test_the_run_id_of_a_chain_reaches_the_calls_inside_it() -> None:
    chat = make_chat(lam=0.0)
    run_id = uuid.uuid4()
    _chain(chat).invoke(QUESTION, config={"run_id": run_id})
    before = _quality(chat, "cheap")
    (result,) = chat.feedback(run_id, thumbs=False)
    assert result.llm == "cheap" and result.applied
    assert _quality(chat, "cheap") < before - 0.05


async def test_the_run_id_of_an_async_chain_reaches_the_calls_inside_it() -> None:
    chat = make_chat(lam=0.0)
    run_id = uuid.uuid4()
    await _chain(chat).ainvoke(QUESTION, config={"run_id": run_id})
    assert [r.llm for r in chat.feedback(str(run_id), thumbs=True)] == ["cheap"]


def test_a_nested_chain_needs_the_handler_and_says_so() -> None:
    chat = make_chat(lam=0.0)
    outer = RunnableParallel(answer=_chain(chat))  # the chain runs one level down
    run_id = uuid.uuid4()
    outer.invoke(QUESTION, config={"run_id": run_id})
    with pytest.raises(FeedbackError, match="MixLLMFeedbackHandler"):
        chat.feedback(run_id, thumbs=True)
    handled = uuid.uuid4()
    outer.invoke(QUESTION, config={"run_id": handled, "callbacks": [MixLLMFeedbackHandler(chat)]})
    assert [r.llm for r in chat.feedback(handled, thumbs=True)] == ["cheap"]


def _agent(chat: MixLLMChat):  # type: ignore[no-untyped-def]
    from langchain.agents import create_agent

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    return create_agent(model=chat, tools=[add])


def test_the_run_id_of_an_agent_reaches_every_model_call_of_the_run() -> None:
    chat = make_chat(lam=0.0)
    run_id = uuid.uuid4()
    state = _agent(chat).invoke(
        {"messages": [("user", "Use add on 2 and 3")]}, config={"run_id": run_id}
    )
    routed = [m for m in state["messages"] if "mixllm" in m.response_metadata]
    assert len(routed) == 2  # the tool call, then the final answer
    results = chat.feedback(run_id, thumbs=True)
    assert sorted(r.decision_id for r in results) == sorted(
        m.response_metadata["mixllm"]["decision_id"] for m in routed
    )


async def test_the_run_id_of_an_async_agent_reaches_its_model_calls() -> None:
    chat = make_chat(lam=0.0)
    run_id = uuid.uuid4()
    await _agent(chat).ainvoke(
        {"messages": [("user", "Use add on 2 and 3")]}, config={"run_id": run_id}
    )
    assert len(chat.feedback(run_id, score=0.7)) == 2


# ---------------------------------------------------------------------- the README snippet


def test_the_readme_langchain_snippets_run_verbatim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("\nLangChain")
    section = readme[start : readme.index("\nLlamaIndex:", start)]
    blocks = [
        (readme.count("\n", 0, start + m.start(1)), m.group(1))
        for m in re.finditer(r"^```python\n(.*?)^```", section, re.M | re.S)
    ]
    assert len(blocks) == 2 and "MixLLMDecisionModel()" in blocks[1][1]
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme_langchain"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)  # the beta middleware warns
        for line, code in blocks:  # one namespace, as a reader runs them; tracebacks name lines
            compiled = compile("\n" * line + code, "README.md", "exec")
            exec(compiled, namespace)  # noqa: S102 - our own README
    assert namespace["state"]["model_route"].choice in {"fast", "deep"}  # type: ignore[index]
