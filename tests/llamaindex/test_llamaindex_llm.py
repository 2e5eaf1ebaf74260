"""MixLLM as a LlamaIndex LLM: routing, the eight call forms, tools, fallback, events, feedback."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.tools import FunctionTool
from llamaindex_helpers import PRICES, make_mix

import mixllm_llamaindex
from mixllm_core import AllCandidatesFailedError, ConfigError, FeedbackError, LLMSpec, MixLLMRouter
from mixllm_core.errors import UnknownLLMError
from mixllm_core.testing import HashingEncoder
from mixllm_llamaindex import MixLLM, RoutingDecisionEvent
from mixllm_llamaindex.testing import ScriptedLLM, ToolLLM

TOPICS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"]
QUESTIONS = [f"Question {i}: explain topic {w} briefly." for i, w in enumerate(TOPICS * 2)]


def pair(**small_kwargs: Any) -> dict[str, ScriptedLLM]:
    return {"small": ScriptedLLM(label="small", **small_kwargs), "big": ScriptedLLM(label="big")}


def test_public_api_is_pinned() -> None:
    assert sorted(mixllm_llamaindex.__all__) == [
        "AnswerDecisions",
        "MixLLM",
        "MixLLMSelector",
        "RoutedSelection",
        "RoutingDecisionEvent",
        "__version__",
    ]
    for name in mixllm_llamaindex.__all__:
        assert getattr(mixllm_llamaindex, name) is not None, name
    assert MixLLM.class_name() == "MixLLM"


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    assert mixllm_llamaindex.__version__ == version("mixllm")


def test_metadata_holds_for_the_whole_pool() -> None:
    llm = make_mix(
        {
            "small": ScriptedLLM(label="small", window=1000),
            "big": ScriptedLLM(label="big", window=8000),
        }
    )
    assert llm.metadata.context_window == 1000
    assert llm.metadata.num_output == 64
    assert llm.metadata.is_function_calling_model is False  # completion children
    tools = make_mix({"small": ToolLLM(label="small"), "big": ToolLLM(label="big")})
    assert isinstance(tools, FunctionCallingLLM)
    assert tools.metadata.is_function_calling_model is True


def test_the_chosen_child_is_the_one_called() -> None:
    # Equal prices: every decision is a seeded tie-break, so both children get traffic.
    children = pair()
    llm = make_mix(children, prices={"small": (1.0, 1.0), "big": (1.0, 1.0)})
    chosen = []
    for i, question in enumerate(QUESTIONS):
        before = {n: len(c.calls) for n, c in children.items()}
        response = llm.complete(question) if i % 2 else llm.chat([ChatMessage(content=question)])
        called = [n for n, c in children.items() if len(c.calls) > before[n]]
        info = response.additional_kwargs["mixllm"]
        assert called == [info["llm"]]
        chosen.append(info["llm"])
    assert set(chosen) == {"small", "big"}


def test_cold_start_prefers_the_cheap_child_and_pin_overrides() -> None:
    children = pair()
    llm = make_mix(children)
    assert llm.complete("hi").text == "small: an answer"
    assert llm.complete("hi", model="big").text == "big: an answer"
    assert children["small"].calls == ["complete"] and children["big"].calls == ["complete"]
    with pytest.raises(UnknownLLMError, match="Unknown LLM 'huge'"):
        llm.complete("hi", model="huge")


async def test_every_call_form_routes_and_carries_the_decision() -> None:
    llm = make_mix(pair())
    msgs = [ChatMessage(role="user", content="What is routing?")]
    whole = [llm.chat(msgs), llm.complete("q"), await llm.achat(msgs), await llm.acomplete("q")]
    streams = [
        list(llm.stream_chat(msgs)),
        list(llm.stream_complete("q")),
        [r async for r in await llm.astream_chat(msgs)],
        [r async for r in await llm.astream_complete("q")],
    ]
    for response in whole:
        assert getattr(response, "text", None) or response.message.content == "small: an answer"
    for chunks in streams:
        assert "".join(c.delta for c in chunks) == "small: an answer"
        ids = {c.additional_kwargs["mixllm"]["decision_id"] for c in chunks}
        assert len(ids) == 1
    infos = [r.additional_kwargs["mixllm"] for r in whole] + [
        s[-1].additional_kwargs["mixllm"] for s in streams
    ]
    assert len({i["decision_id"] for i in infos}) == 8
    assert all(i["llm"] == "small" and i["latency_s"] >= 0 for i in infos)
    assert whole[1].additional_kwargs["mixllm"]["input_tokens"] == 7  # the child's usage is used
    assert whole[1].additional_kwargs["mixllm"]["cost"] == pytest.approx((7 * 0.1 + 3 * 0.4) / 1e6)
    assert len(llm.router.log.rows()["outcomes"]) == 8
    assert all(llm.router.tracker.in_flight(n) == 0 for n in ("small", "big"))


@pytest.mark.parametrize("form", ["complete", "acomplete", "stream_complete", "astream_complete"])
async def test_a_failing_child_falls_back(form: str) -> None:
    children = pair(fail=True)  # the cheap child, chosen first, always fails
    llm = make_mix(children)
    result = getattr(llm, form)("Summarise the report.")
    if inspect.isawaitable(result):
        result = await result
    if form.startswith("astream"):
        chunks = [c async for c in result]
    elif form.startswith("stream"):
        chunks = list(result)
    else:
        chunks = [result]
    assert chunks[-1].text == "big: an answer"
    info = chunks[-1].additional_kwargs["mixllm"]
    assert info["llm"] == "big" and [a["llm"] for a in info["attempts"]] == ["small", "big"]
    assert "small is down" in info["attempts"][0]["error"] and info["attempts"][1]["error"] == ""
    assert len(children["small"].calls) == 1 and len(children["big"].calls) == 1
    errors = [o for o in llm.router.log.rows()["outcomes"] if o["error"]]
    assert len(errors) == 1 and "small is down" in errors[0]["error"]


def test_all_children_failing_raises() -> None:
    llm = make_mix(
        {"small": ScriptedLLM(label="small", fail=True), "big": ScriptedLLM(label="big", fail=True)}
    )
    with pytest.raises(AllCandidatesFailedError, match="2 candidate"):
        llm.complete("q")


class _Recorder(BaseEventHandler):
    events: list[Any] = []

    def handle(self, event: Any, **kwargs: Any) -> None:
        if isinstance(event, RoutingDecisionEvent):
            self.events.append(event)


def test_each_decision_is_an_instrumentation_event() -> None:
    root = get_dispatcher()
    recorder = _Recorder(events=[])
    root.add_event_handler(recorder)
    try:
        llm = make_mix(pair(fail=True))
        response = llm.complete("q")
    finally:
        root.event_handlers.remove(recorder)
    assert [(e.llm, e.attempt, e.operation) for e in recorder.events] == [
        ("small", 1, "complete"),
        ("big", 2, "complete"),
    ]
    assert recorder.events[-1].decision_id == response.additional_kwargs["mixllm"]["decision_id"]
    assert {c["llm"] for c in recorder.events[0].decision["candidates"]} == {"small", "big"}


def test_feedback_by_response_id_and_answer() -> None:
    llm = make_mix(pair())
    first, second = llm.complete("a"), llm.complete("b")
    [result] = llm.feedback(first, thumbs=True)  # a list, as MixLLMChat.feedback returns
    assert result.applied  # cold start learns: heads exist
    decision_id = second.additional_kwargs["mixllm"]["decision_id"]
    assert [r.score for r in llm.feedback(decision_id, score=0.3)] == [0.3]
    with pytest.raises(FeedbackError, match="already received"):
        llm.feedback(first, thumbs=False)
    with pytest.raises(FeedbackError, match="carries no routing decision"):
        llm.feedback(ChatMessage(content="x"), thumbs=True)  # type: ignore[arg-type]
    with llm.collect() as answer:
        pass
    with pytest.raises(FeedbackError, match="No routing decision"):
        answer.feedback(score=1.0)


def test_negative_feedback_moves_traffic_to_the_other_child() -> None:
    llm = make_mix(pair(), lam=2.0, alpha=0.0)
    question = "Prove that the square root of two is irrational."
    for _ in range(3):
        with llm.collect() as answer:
            llm.complete(question)
        if answer.llms == ["big"]:
            break
        answer.feedback(score=0.0)
    assert llm.complete(question).additional_kwargs["mixllm"]["llm"] == "big"


async def test_collect_follows_each_task_of_concurrent_answers() -> None:
    llm = make_mix(pair())

    async def one_answer(question: str, calls: int) -> Any:
        with llm.collect() as answer:
            for _ in range(calls):
                await llm.acomplete(question)
                await asyncio.sleep(0)
        return answer

    a, b = await asyncio.gather(one_answer("first", 2), one_answer("second", 3))
    assert (len(a), len(b)) == (2, 3)
    assert not set(a.decision_ids) & set(b.decision_ids)
    with llm.collect() as outer:
        with llm.collect() as inner:
            llm.complete("nested")
        llm.complete("outer only")
    assert (len(outer), len(inner)) == (2, 1)
    other = make_mix(pair())
    with llm.collect() as mine:
        other.complete("not mine")
    assert len(mine) == 0


def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def test_tools_are_forwarded_to_the_chosen_child() -> None:
    children = {
        "small": ToolLLM(label="small", tool_args={"a": 2, "b": 3}),
        "big": ToolLLM(label="big", tool_args={"a": 2, "b": 3}),
    }
    llm = make_mix(children)
    tool = FunctionTool.from_defaults(fn=multiply)
    response = llm.chat_with_tools([tool], user_msg="What is 2 times 3?")
    assert response.additional_kwargs["mixllm"]["llm"] == "small"
    assert children["small"].calls[0]["tools"] == [tool] and not children["big"].calls
    [selection] = llm.get_tool_calls_from_response(response)
    assert (selection.tool_name, selection.tool_kwargs) == ("multiply", {"a": 2, "b": 3})
    assert str(llm.predict_and_call([tool], user_msg="What is 2 times 3?")) == "6"


def test_tools_need_function_calling_children() -> None:
    llm = make_mix({"small": ToolLLM(label="small"), "big": ScriptedLLM(label="big")})
    with pytest.raises(ConfigError, match=r"\['big'\] are not"):
        llm.chat_with_tools([FunctionTool.from_defaults(fn=multiply)], user_msg="2*3?")


def test_configuration_errors_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="at least one child"):
        MixLLM({})
    with pytest.raises(ConfigError, match="must be a llama_index LLM"):
        MixLLM({"x": object()})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match=r"prices name \['huge'\], which are not children"):
        make_mix(pair(), prices={"huge": (1.0, 1.0)})
    router = MixLLMRouter([LLMSpec("small"), LLMSpec("other")], encoder=HashingEncoder())
    with pytest.raises(ConfigError, match="must be the children"):
        MixLLM(pair(), router=router)


def test_a_given_router_is_used_with_overrides() -> None:
    router = MixLLMRouter(
        [LLMSpec("small", 0.1, 0.4), LLMSpec("big", 5.0, 15.0)], encoder=HashingEncoder()
    )
    llm = MixLLM(pair(), router=router, lam=50.0)
    assert llm.router is router
    assert llm.complete("q").additional_kwargs["mixllm"]["lam"] == 50.0
    assert llm.complete("q").additional_kwargs["mixllm"]["llm"] == "big"  # quality first


def test_docstring_example_runs() -> None:
    import doctest

    import mixllm_llamaindex.llms

    result = doctest.testmod(mixllm_llamaindex.llms, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------------- one vocabulary
def test_old_spellings_still_work_and_name_the_new_ones() -> None:
    children = pair()
    with pytest.warns(DeprecationWarning, match="use models="):
        llm = MixLLM(llms=children, encoder=HashingEncoder(), prices=PRICES)
    assert llm.models == children
    with pytest.warns(DeprecationWarning, match=r"use \.models"):
        assert llm.llms == children
    with pytest.warns(DeprecationWarning, match="use model=<name>"):
        assert llm.complete("hi", pin="big").text == "big: an answer"
    with pytest.warns(DeprecationWarning, match="use max_retries=n - 1"):
        retried = MixLLM(children, encoder=HashingEncoder(), prices=PRICES, max_attempts=1)
    assert retried.max_retries == 0 and retried.dispatcher.max_retries == 0
    with pytest.raises(ConfigError, match="once, as models="), pytest.warns(DeprecationWarning):
        MixLLM(children, llms=children)


def test_max_retries_bounds_the_fallback() -> None:
    children = {n: ScriptedLLM(label=n, fail=True) for n in ("small", "mid", "big")}
    llm = make_mix(children, max_retries=1, prices={**PRICES, "mid": (1.0, 2.0)})
    with pytest.raises(AllCandidatesFailedError, match="All 2 candidate"):
        llm.complete("q")
    assert sum(len(c.calls) for c in children.values()) == 2


def test_defaults_match_the_langchain_adapter() -> None:
    from mixllm_core.factory import DEFAULT_ALPHA, DEFAULT_LAM
    from mixllm_langchain import MixLLMChat

    llm = make_mix(pair())
    fields = MixLLMChat.model_fields
    for name in ("lam", "alpha", "max_retries", "failure_threshold", "cooldown_s"):
        assert getattr(llm, name) == fields[name].default, name
    assert (llm.router.policy.lam, llm.router.policy.alpha) == (DEFAULT_LAM, DEFAULT_ALPHA)


# ---------------------------------------------------------------------- outcomes and secrets
async def test_the_dispatcher_records_each_outcome_once_with_usage() -> None:
    llm = make_mix(pair(), prices={"small": (1.0, 2.0), "big": (5.0, 15.0)})
    whole = llm.complete("q")
    chunks = [c async for c in await llm.astream_complete("q")]
    rows = {o["decision_id"]: o for o in llm.router.log.rows()["outcomes"]}
    assert len(rows) == 2
    reported = rows[whole.additional_kwargs["mixllm"]["decision_id"]]
    assert (reported["input_tokens"], reported["output_tokens"]) == (7, 3)
    assert reported["cost"] == pytest.approx((7 * 1.0 + 3 * 2.0) / 1e6) and not reported["error"]
    streamed = chunks[-1].additional_kwargs["mixllm"]
    assert streamed["usage_estimated"] and streamed["output_tokens"] == 4  # "small: an answer"
    assert rows[streamed["decision_id"]]["cost"] == streamed["cost"] > 0
    assert all(r["latency_s"] >= 0 for r in rows.values())


SECRET = "AIzaSyD-not-a-real-key-0123456789abcdef"


def test_a_childs_key_never_leaves_the_dispatcher() -> None:
    import traceback

    leaky = f"403 Forbidden for url https://generativelanguage.example/v1?key={SECRET}"
    children = {
        "small": ScriptedLLM(label="small", fail=True, error=leaky),
        "big": ScriptedLLM(label="big", fail=True, error=f"Authorization: Bearer {SECRET}"),
    }
    llm = make_mix(children)
    with pytest.raises(AllCandidatesFailedError) as info:
        llm.complete("q")
    shown = "".join(traceback.format_exception(info.value))
    assert SECRET not in shown and "key=[REDACTED]" in shown and "Bearer [REDACTED]" in shown
    assert all(SECRET not in a.error for a in info.value.attempts)
    logged = [o["error"] for o in llm.router.log.rows()["outcomes"]]
    assert len(logged) == 2 and all("[REDACTED]" in e and SECRET not in e for e in logged)
    fallback = make_mix({"small": children["small"], "big": ScriptedLLM(label="big")})
    chunks = list(fallback.stream_complete("q"))
    assert SECRET not in repr(chunks[-1].additional_kwargs["mixllm"]["attempts"])


def test_repr_does_not_show_the_children() -> None:
    class KeyedLLM(ScriptedLLM):
        api_key: str = SECRET

    llm = make_mix({"small": KeyedLLM(label="small"), "big": KeyedLLM(label="big")})
    assert SECRET in repr(llm.models["small"])  # the child's own repr would leak it
    assert SECRET not in repr(llm) and SECRET not in str(llm)
