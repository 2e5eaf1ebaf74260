"""Behaviour of MixLLMChat: who is called, pins, feedback paths, fallback, streaming, callbacks."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from langchain_helpers import PRICES, make_chat

from mixllm_core import AllCandidatesFailedError, FeedbackError, MixLLMRouter
from mixllm_core.errors import UnknownLLMError
from mixllm_core.testing import HashingEncoder
from mixllm_langchain import MixLLMChat, MixLLMFeedbackHandler, RunLedger
from mixllm_langchain.testing import ScriptedChatModel

QUERY = "Explain the derivative of x squared"


def _calls(chat: MixLLMChat) -> dict[str, int]:
    return {name: len(child.calls) for name, child in chat.models.items()}


def _join(chunks: list[Any]) -> Any:
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    return full


class _Counter(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts = 0
        self.tokens: list[str] = []
        self.ends = 0

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        self.starts += 1

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)

    def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        self.ends += 1


def test_public_api_is_pinned() -> None:
    import mixllm_langchain

    assert sorted(mixllm_langchain.__all__) == [
        "MixLLMChat",
        "MixLLMDecisionModel",
        "MixLLMFeedbackHandler",
        "RunLedger",
        "__version__",
    ]
    for name in mixllm_langchain.__all__:
        assert getattr(mixllm_langchain, name) is not None, name


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    import mixllm_langchain

    assert mixllm_langchain.__version__ == version("mixllm")


# ---------------------------------------------------------------------- routing
@pytest.mark.parametrize(("lam", "expected"), [(0.0, "cheap"), (100.0, "pricey")])
def test_chosen_child_is_the_one_called(lam: float, expected: str) -> None:
    chat = make_chat(lam=lam)
    reply = chat.invoke(QUERY)
    meta = reply.response_metadata["mixllm"]
    assert meta["llm"] == expected
    assert reply.response_metadata["model_name"] == expected
    assert _calls(chat) == {n: int(n == expected) for n in PRICES}
    assert {c["llm"] for c in meta["candidates"]} == set(PRICES)


async def test_chosen_child_is_the_one_called_async() -> None:
    chat = make_chat(lam=100.0)
    reply = await chat.ainvoke(QUERY)
    assert reply.response_metadata["mixllm"]["llm"] == "pricey"
    assert _calls(chat) == {"cheap": 0, "pricey": 1}


@pytest.mark.parametrize("pin", ["cheap", "pricey"])
def test_pinned_child_is_honoured(pin: str) -> None:
    chat = make_chat(lam=0.0)
    replies = [chat.invoke(QUERY, model=pin), _join(list(chat.stream(QUERY, model=pin)))]
    for reply in replies:
        assert reply.response_metadata["model_name"] == pin
        assert reply.response_metadata["mixllm"]["llm"] == pin
    assert _calls(chat)[pin] == 2


def test_unknown_pin_names_the_children() -> None:
    with pytest.raises(UnknownLLMError, match=r"'nope'.*\['cheap', 'pricey'\]"):
        make_chat().invoke(QUERY, model="nope")


def test_usage_cost_and_latency_are_reported() -> None:
    chat = make_chat(lam=100.0)
    reply = chat.invoke(QUERY)
    usage, meta = reply.usage_metadata, reply.response_metadata["mixllm"]
    assert usage == {"input_tokens": 6, "output_tokens": 7, "total_tokens": 13}
    assert meta["cost"] == pytest.approx((6 * 5.0 + 7 * 15.0) / 1e6)
    assert meta["latency_s"] > 0 and not meta["usage_estimated"]
    # the outcome reached the router once, and the latency tracker saw the call finish
    assert [o["decision_id"] for o in chat.router.log.rows()["outcomes"]] == [meta["decision_id"]]
    assert chat.router.tracker.in_flight("pricey") == 0
    assert chat.router.tracker.service_time("pricey") < chat.router.tracker.default_service_s


def test_tracker_counts_the_call_in_flight() -> None:
    seen: list[int] = []

    class Probe(ScriptedChatModel):
        def _respond(self, *args: Any) -> AIMessage:
            seen.append(chat.router.tracker.in_flight(self.model_name))
            return super()._respond(*args)

    chat = make_chat(models={n: Probe(model_name=n) for n in PRICES})
    chat.invoke(QUERY, model="cheap")
    list(chat.stream(QUERY, model="cheap"))
    assert seen == [1, 1]
    assert chat.router.tracker.in_flight("cheap") == 0


def test_stop_and_standard_params_pass_through() -> None:
    chat = make_chat(lam=0.0, stop=["squared"])
    assert chat.invoke(QUERY).text == "cheap: Explain the derivative of x "
    assert chat.invoke(QUERY, stop=["derivative"]).text == "cheap: Explain the "


def test_config_errors_name_the_bad_values() -> None:
    # pydantic wraps the ConfigError of a validator in a ValidationError (also a ValueError)
    with pytest.raises(ValueError, match=r"\['other'\].*\['cheap', 'pricey'\]"):
        make_chat(prices={**PRICES, "other": (1, 1)})
    with pytest.raises(ValueError, match="prices\\['cheap'\\]"):
        make_chat(prices={"cheap": "free"})
    router = MixLLMRouter(["cheap"], encoder=HashingEncoder())
    with pytest.raises(ValueError, match=r"no child for \[\]; not in the router: \['pricey'\]"):
        make_chat(router=router, prices=None, encoder=None)
    with pytest.raises(ValueError, match="prices configure a cold-start router"):
        make_chat(router=MixLLMRouter(list(PRICES), encoder=HashingEncoder()), encoder=None)


# ---------------------------------------------------------------------- streaming
def test_streaming_yields_the_same_text_as_invoke() -> None:
    chat = make_chat(lam=0.0)
    invoked = chat.invoke(QUERY)
    chunks = list(chat.stream(QUERY))
    full = _join(chunks)
    assert len(chunks) > 2 and chunks[-1].chunk_position == "last"
    assert full.text == invoked.text
    assert full.response_metadata["model_name"] == "cheap"  # set once, not concatenated
    assert full.usage_metadata == invoked.usage_metadata
    assert full.response_metadata["mixllm"]["cost"] == invoked.response_metadata["mixllm"]["cost"]


async def test_astream_yields_the_same_text_as_ainvoke() -> None:
    chat = make_chat(lam=0.0)
    invoked = await chat.ainvoke(QUERY)
    full = _join([c async for c in chat.astream(QUERY)])
    assert full.text == invoked.text
    assert full.response_metadata["model_name"] == "cheap"


def test_streaming_flag_makes_invoke_stream() -> None:
    reply = make_chat(lam=0.0, streaming=True).invoke(QUERY)
    assert reply.text == f"cheap: {QUERY}"
    assert reply.response_metadata["model_name"] == "cheap"


# ---------------------------------------------------------------------- fallback
def _failing(n: int = 10**6) -> dict[str, ScriptedChatModel]:
    return {
        "cheap": ScriptedChatModel(model_name="cheap"),
        "pricey": ScriptedChatModel(model_name="pricey", fail_first=n),
    }


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_failing_child_falls_back(mode: str) -> None:
    chat = make_chat(lam=100.0, models=_failing())
    reply = chat.invoke(QUERY) if mode == "invoke" else _join(list(chat.stream(QUERY)))
    meta = reply.response_metadata["mixllm"]
    assert meta["llm"] == "cheap" and reply.text.startswith("cheap:")
    assert [a["llm"] for a in meta["attempts"]] == ["pricey", "cheap"]
    assert "scripted failure" in meta["attempts"][0]["error"]
    assert _calls(chat) == {"cheap": 1, "pricey": 1}
    errors = [o for o in chat.router.log.rows()["outcomes"] if o["error"]]
    assert [o["decision_id"] for o in errors] == [meta["attempts"][0]["decision_id"]]


async def test_failing_child_falls_back_async() -> None:
    chat = make_chat(lam=100.0, models=_failing())
    reply = await chat.ainvoke(QUERY)
    assert reply.response_metadata["mixllm"]["llm"] == "cheap"
    full = _join([c async for c in chat.astream(QUERY)])
    assert full.response_metadata["mixllm"]["llm"] == "cheap"


def test_a_child_that_keeps_failing_cools_down() -> None:
    chat = make_chat(lam=100.0, models=_failing(), failure_threshold=2)
    for _ in range(3):
        chat.invoke(QUERY)
    assert chat.dispatcher.cooling_down() == {"pricey"}
    assert len(chat.models["pricey"].calls) == 2  # not tried once it cooled down


def test_all_children_failing_raises_with_every_attempt() -> None:
    models = {n: ScriptedChatModel(model_name=n, fail_first=10**6) for n in PRICES}
    with pytest.raises(AllCandidatesFailedError, match="cheap: RuntimeError"):
        make_chat(models=models).invoke(QUERY)
    chat = make_chat(models=_failing(), max_retries=0, lam=100.0)
    with pytest.raises(AllCandidatesFailedError):
        chat.invoke(QUERY)


def test_pinned_child_that_fails_is_not_replaced() -> None:
    chat = make_chat(models=_failing())
    with pytest.raises(AllCandidatesFailedError, match="pricey"):
        chat.invoke(QUERY, model="pricey")
    assert len(chat.models["cheap"].calls) == 0


# ---------------------------------------------------------------------- feedback
def _quality(chat: MixLLMChat, llm: str) -> float:
    pred = chat.router.predict([QUERY])
    return float(pred["quality"][0, pred["llms"].index(llm)])


def test_feedback_by_message_moves_the_online_head() -> None:
    chat = make_chat(lam=0.0)
    before = _quality(chat, "cheap")
    results = chat.feedback(chat.invoke(QUERY), thumbs=False)
    assert [(r.llm, r.applied, r.score) for r in results] == [("cheap", True, 0.0)]
    assert _quality(chat, "cheap") < before - 0.05
    assert _quality(chat, "pricey") == pytest.approx(0.8)


def test_feedback_by_decision_id_and_streamed_message() -> None:
    chat = make_chat(lam=0.0)
    decision_id = chat.invoke(QUERY).response_metadata["mixllm"]["decision_id"]
    assert chat.feedback(decision_id, score=0.9)[0].applied
    streamed = _join(list(chat.stream(QUERY)))
    assert chat.feedback(streamed, score=0.2)[0].applied
    with pytest.raises(FeedbackError, match="already received feedback"):
        chat.feedback(decision_id, score=0.5)


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_feedback_by_run_id(mode: str) -> None:
    chat = make_chat(lam=0.0)
    run_id = uuid.uuid4()
    if mode == "invoke":
        reply = chat.invoke(QUERY, config={"run_id": run_id})
    else:
        reply = _join(list(chat.stream(QUERY, config={"run_id": run_id})))
    assert reply.id.startswith(f"lc_run--{run_id}")
    decision_id = reply.response_metadata["mixllm"]["decision_id"]
    assert chat.decision_ids(run_id) == [decision_id]
    results = chat.feedback(str(run_id), thumbs=True)
    assert [r.decision_id for r in results] == [decision_id] and results[0].applied


async def test_feedback_by_run_id_async() -> None:
    chat = make_chat(lam=0.0)
    run_id = uuid.uuid4()
    await chat.ainvoke(QUERY, config={"run_id": run_id})
    assert chat.feedback(run_id, thumbs=True)[0].applied


def test_handler_maps_a_chain_run_to_its_decisions() -> None:
    chat = make_chat(lam=0.0)
    handler = MixLLMFeedbackHandler(chat)
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | chat | StrOutputParser()
    chain_run = uuid.uuid4()
    text = chain.invoke({"q": QUERY}, config={"callbacks": [handler], "run_id": chain_run})
    assert text == f"cheap: {QUERY}"
    assert len(handler.decisions(chain_run)) == 1
    assert (
        len(chat.router.log.rows()["outcomes"]) == 1
    )  # two handlers saw the run; one outcome recorded
    before = _quality(chat, "cheap")
    assert [r.applied for r in handler.feedback(chain_run, score=1.0)] == [True]
    assert _quality(chat, "cheap") > before + 0.05


def test_handler_on_a_bare_router() -> None:
    chat = make_chat(lam=0.0)
    handler = MixLLMFeedbackHandler(chat.router)
    assert handler.ledger is not chat.ledger and isinstance(handler.ledger, RunLedger)
    run_id = uuid.uuid4()
    chat.invoke(QUERY, config={"callbacks": [handler], "run_id": run_id})
    assert handler.feedback(run_id, thumbs=True)[0].applied
    with pytest.raises(TypeError, match="MixLLMChat or a MixLLMRouter"):
        MixLLMFeedbackHandler(object())


def test_feedback_errors_name_the_target() -> None:
    chat = make_chat()
    with pytest.raises(FeedbackError, match="not produced by this MixLLMChat"):
        chat.feedback(AIMessage("hi", id="elsewhere"), thumbs=True)
    with pytest.raises(FeedbackError, match="'nope' is not a decision id.*collect"):
        chat.feedback("nope", thumbs=True)
    with pytest.raises(FeedbackError, match="run id"):
        chat.feedback(uuid.uuid4(), thumbs=True)
    with pytest.raises(FeedbackError, match="got int"):
        chat.feedback(3, thumbs=True)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- callbacks & tools
@pytest.mark.parametrize("mode", ["invoke", "stream", "batch"])
def test_no_doubled_callbacks_inside_a_chain(mode: str) -> None:
    chat = make_chat(lam=0.0)
    counter = _Counter()
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | chat | StrOutputParser()
    config = {"callbacks": [counter]}
    if mode == "invoke":
        out = [chain.invoke({"q": QUERY}, config=config)]
    elif mode == "stream":
        out = ["".join(chain.stream({"q": QUERY}, config=config))]
    else:
        out = chain.batch([{"q": QUERY}, {"q": "hello"}], config=config)
    assert counter.starts == counter.ends == len(out)
    if mode == "stream":
        assert "".join(counter.tokens) == out[0] == f"cheap: {QUERY}"


def test_tools_bound_to_a_child_binding_do_not_leak_callbacks() -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    chat = make_chat(lam=100.0)
    counter = _Counter()
    bound = chat.bind_tools([add])
    first = bound.invoke("What is 2 + 3?", config={"callbacks": [counter]})
    assert first.tool_calls[0]["args"] == {"a": 2, "b": 3}
    assert first.response_metadata["mixllm"]["llm"] == "pricey"
    result = add.invoke(first.tool_calls[0])
    assert isinstance(result, ToolMessage) and result.content == "5"
    messages: list[BaseMessage] = [("human", "What is 2 + 3?"), first, result]  # type: ignore[list-item]
    final = bound.invoke(messages, config={"callbacks": [counter]})
    assert final.text == "The tool add returned: 5"
    assert counter.starts == 2


def test_structured_output_goes_through_the_child() -> None:
    from pydantic import BaseModel

    class Pair(BaseModel):
        left: int
        right: int

    out = make_chat(lam=0.0).with_structured_output(Pair).invoke("Pair 4 with 9")
    assert out == Pair(left=4, right=9)
