"""Real provider classes through the router, offline: ``ChatOpenAI`` and ``ChatAnthropic`` (and
LlamaIndex's ``OpenAI``) built from ``"provider:model"`` names, talking to fake HTTP APIs in the
providers' wire format. Plain calls, streaming, tools, structured output and async pass through,
and each call's cost is the provider's reported usage times the list price from genai-prices.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.llms import MockLLM
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai import OpenAI
from provider_fakes import FakeAPI
from pydantic import BaseModel

from mixllm_core.errors import MissingDependencyError, UnpricedLLMWarning
from mixllm_core.prices import price_of
from mixllm_core.testing import HashingEncoder
from mixllm_langchain import MixLLMChat
from mixllm_llamaindex import MixLLM

MINI = "openai:gpt-4o-mini"
HAIKU = "anthropic:claude-3-5-haiku-latest"
GPT4O = "openai:gpt-4o"


class Weather(BaseModel):
    """The weather in a city."""

    city: str
    celsius: int


@tool
def get_weather(city: str) -> str:
    """The weather in ``city``."""
    return f"sunny in {city}"


def _cost(ref: str, tokens_in: int, tokens_out: int) -> float:
    """What a call reporting these tokens costs at the list price of ``ref`` (USD)."""
    price_in, price_out = price_of(ref)
    return round((tokens_in * price_in + tokens_out * price_out) / 1e6, 12)


@pytest.fixture
def apis(openai_api: FakeAPI, anthropic_api: FakeAPI) -> dict[str, FakeAPI]:
    """The fake API behind each child, by child name."""
    return {MINI: openai_api, HAIKU: anthropic_api}


@pytest.fixture
def chat(apis: dict[str, FakeAPI]) -> MixLLMChat:
    """Two real provider classes by name, no prices given: both come from the price table."""
    return MixLLMChat(models=[MINI, HAIKU], encoder=HashingEncoder())


def _expected(apis: dict[str, FakeAPI], name: str) -> tuple[int, int, float]:
    api = apis[name]
    return api.input_tokens, api.output_tokens, _cost(name, api.input_tokens, api.output_tokens)


def _check_usage(message: AIMessage, apis: dict[str, FakeAPI], name: str) -> None:
    tokens_in, tokens_out, cost = _expected(apis, name)
    info = message.response_metadata["mixllm"]
    assert info["llm"] == name
    assert (info["input_tokens"], info["output_tokens"]) == (tokens_in, tokens_out)
    assert info["cost"] == pytest.approx(cost, rel=1e-9)
    assert message.usage_metadata is not None
    assert message.usage_metadata["input_tokens"] == tokens_in
    assert message.usage_metadata["output_tokens"] == tokens_out


# ---------------------------------------------------------------------- LangChain
def test_strings_build_the_provider_classes_priced_from_the_table(chat: MixLLMChat) -> None:
    assert isinstance(chat.models[MINI], ChatOpenAI)
    assert isinstance(chat.models[HAIKU], ChatAnthropic)
    specs = chat._router().specs
    for ref in (MINI, HAIKU):
        price = (specs[ref].input_price, specs[ref].output_price)
        assert price == price_of(ref) and 0 < price[0] <= price[1]


@pytest.mark.parametrize("name", [MINI, HAIKU])
def test_invoke_reaches_the_chosen_provider_and_prices_its_usage(
    chat: MixLLMChat, apis: dict[str, FakeAPI], name: str
) -> None:
    reply = chat.invoke("What is 2+2?", model=name)
    api = apis[name]
    assert api.models() == [name.split(":", 1)[1]]
    assert reply.text == f"{name.split(':', 1)[1]} says hi"
    assert reply.response_metadata["model_name"] == name.split(":", 1)[1]
    _check_usage(reply, apis, name)
    other = HAIKU if name == MINI else MINI
    assert apis[other].requests == []


def test_unpinned_call_at_lam_zero_goes_to_the_cheaper_provider(apis: dict[str, FakeAPI]) -> None:
    chat = MixLLMChat(models=[HAIKU, MINI], lam=0.0, alpha=0.0, encoder=HashingEncoder())
    replies = [chat.invoke(q) for q in ("Say hi", "What is 2+2?", "Name a colour")]
    assert [r.response_metadata["mixllm"]["llm"] for r in replies] == [MINI] * 3
    assert len(apis[MINI].requests) == 3 and apis[HAIKU].requests == []
    for reply in replies:
        _check_usage(reply, apis, MINI)


@pytest.mark.parametrize("name", [MINI, HAIKU])
def test_streaming_passes_chunks_through_and_reads_the_streamed_usage(
    chat: MixLLMChat, apis: dict[str, FakeAPI], name: str
) -> None:
    chunks = list(chat.stream("Say hi", model=name))
    assert sum(1 for c in chunks if c.text) >= 3  # the provider's deltas, not one blob
    merged: AIMessageChunk = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    assert merged.text == f"{name.split(':', 1)[1]} says hi"
    assert apis[name].requests[0]["stream"] is True
    _check_usage(merged, apis, name)


@pytest.mark.parametrize("name", [MINI, HAIKU])
def test_bound_tools_reach_the_provider_in_its_own_format(
    chat: MixLLMChat, apis: dict[str, FakeAPI], name: str
) -> None:
    apis[name].tool_args["get_weather"] = {"city": "Oslo"}
    with_tools = chat.bind_tools([get_weather])
    call = with_tools.invoke("Weather in Oslo?", model=name)
    assert call.tool_calls[0]["name"] == "get_weather"
    assert call.tool_calls[0]["args"] == {"city": "Oslo"}
    sent = apis[name].requests[0]["tools"][0]
    assert sent == ({"type": "function", "function": sent["function"]} if name == MINI else sent)
    assert (sent["function"]["name"] if name == MINI else sent["name"]) == "get_weather"
    assert "input_schema" in sent or "parameters" in sent["function"]
    _check_usage(call, apis, name)
    # the tool's answer goes back; the provider then answers in text
    result = ToolMessage("sunny", tool_call_id=call.tool_calls[0]["id"])
    final = with_tools.invoke([("human", "Weather in Oslo?"), call, result], model=name)
    assert final.text.endswith("says hi") and not final.tool_calls


@pytest.mark.parametrize("name", [MINI, HAIKU])
def test_structured_output_is_parsed_from_the_provider_tool_call(
    chat: MixLLMChat, apis: dict[str, FakeAPI], name: str
) -> None:
    apis[name].tool_args["Weather"] = {"city": "Oslo", "celsius": 21}
    structured = chat.with_structured_output(Weather)
    # (a pin reaches the chat model through a plain with_structured_output chain; with
    # include_raw=True the chain starts with a map, which drops call kwargs)
    assert structured.invoke("Weather in Oslo?", model=name) == Weather(city="Oslo", celsius=21)
    other = HAIKU if name == MINI else MINI
    assert len(apis[name].requests) == 1 and apis[other].requests == []
    sent = apis[name].requests[0]
    assert sent["tool_choice"] in ("required", {"type": "any"})  # "any", each provider's way


@pytest.mark.parametrize("name", [MINI, HAIKU])
async def test_async_invoke_and_stream(
    chat: MixLLMChat, apis: dict[str, FakeAPI], name: str
) -> None:
    reply = await chat.ainvoke("Say hi", model=name)
    _check_usage(reply, apis, name)
    chunks = [c async for c in chat.astream("Say hi", model=name)]
    merged: AIMessageChunk = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    assert merged.text == reply.text
    _check_usage(merged, apis, name)
    assert len(apis[name].requests) == 2


def test_a_model_object_keyed_by_its_name_takes_the_list_price(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The transport handed in by the caller (no respx): ChatOpenAI's own ``http_client``."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")  # for the child built by name
    api = FakeAPI(input_tokens=50, output_tokens=10)
    transport = httpx.MockTransport(api.openai)
    model = ChatOpenAI(
        model="gpt-4o",
        api_key="sk-test-not-a-key",
        http_client=httpx.Client(transport=transport),
        http_async_client=httpx.AsyncClient(transport=transport),
    )
    chat = MixLLMChat(models={GPT4O: model, "fast": "openai:gpt-4o-mini"}, encoder=HashingEncoder())
    assert chat.models[GPT4O] is model
    reply = chat.invoke("Say hi", model=GPT4O)
    assert reply.response_metadata["mixllm"]["cost"] == pytest.approx(_cost(GPT4O, 50, 10))
    assert chat._router().specs["fast"].input_price == price_of(MINI)[0]
    assert api.models() == ["gpt-4o"]


# ---------------------------------------------------------------------- LlamaIndex
@pytest.fixture
def mix(openai_api: FakeAPI) -> MixLLM:
    return MixLLM([MINI, GPT4O], encoder=HashingEncoder())


def _check_li_usage(info: dict[str, Any], api: FakeAPI, name: str) -> None:
    assert info["llm"] == name
    assert (info["input_tokens"], info["output_tokens"]) == (api.input_tokens, api.output_tokens)
    assert info["cost"] == pytest.approx(_cost(name, api.input_tokens, api.output_tokens))


def test_llamaindex_strings_build_openai_priced_from_the_table(mix: MixLLM) -> None:
    assert all(isinstance(child, OpenAI) for child in mix.models.values())
    assert mix.router.specs[GPT4O].input_price == price_of(GPT4O)[0]
    assert mix.metadata.is_function_calling_model


@pytest.mark.parametrize("name", [MINI, GPT4O])
def test_llamaindex_chat_complete_and_stream(mix: MixLLM, openai_api: FakeAPI, name: str) -> None:
    model = name.split(":", 1)[1]
    response = mix.chat([ChatMessage(role="user", content="Say hi")], model=name)
    assert response.message.content == f"{model} says hi"
    _check_li_usage(response.additional_kwargs["mixllm"], openai_api, name)
    completion = mix.complete("Say hi", model=name)
    _check_li_usage(completion.additional_kwargs["mixllm"], openai_api, name)
    *_, last = mix.stream_chat([ChatMessage(role="user", content="Say hi")], model=name)
    assert last.message.content == f"{model} says hi"
    assert openai_api.requests[-1]["stream"] is True
    _check_li_usage(last.additional_kwargs["mixllm"], openai_api, name)
    assert openai_api.models() == [model] * 3


async def test_llamaindex_async(mix: MixLLM, openai_api: FakeAPI) -> None:
    response = await mix.achat([ChatMessage(role="user", content="Say hi")], model=MINI)
    _check_li_usage(response.additional_kwargs["mixllm"], openai_api, MINI)
    stream = await mix.astream_complete("Say hi", model=GPT4O)
    chunks = [c async for c in stream]
    assert chunks[-1].text == "gpt-4o says hi"
    _check_li_usage(chunks[-1].additional_kwargs["mixllm"], openai_api, GPT4O)


def test_llamaindex_tools_and_structured_output(mix: MixLLM, openai_api: FakeAPI) -> None:
    weather = FunctionTool.from_defaults(fn=lambda city: f"sunny in {city}", name="get_weather")
    openai_api.tool_args["get_weather"] = {"city": "Oslo"}
    response = mix.chat_with_tools([weather], user_msg="Weather in Oslo?", model=MINI)
    calls = mix.get_tool_calls_from_response(response, error_on_no_tool_call=True)
    assert [(c.tool_name, c.tool_kwargs) for c in calls] == [("get_weather", {"city": "Oslo"})]
    assert openai_api.requests[-1]["tools"][0]["function"]["name"] == "get_weather"
    _check_li_usage(response.additional_kwargs["mixllm"], openai_api, MINI)

    openai_api.tool_args["Weather"] = {"city": "Oslo", "celsius": 21}
    parsed = mix.structured_predict(Weather, PromptTemplate("Weather in {city}?"), city="Oslo")
    assert parsed == Weather(city="Oslo", celsius=21)


def test_llamaindex_anthropic_by_name_names_the_package_to_install() -> None:
    with pytest.raises(MissingDependencyError, match="pip install llama-index-llms-anthropic"):
        MixLLM([MINI, HAIKU], encoder=HashingEncoder())


def test_llamaindex_without_prices_warns_that_the_choice_is_a_coin_flip() -> None:
    with pytest.warns(UnpricedLLMWarning, match="coin flip"):
        MixLLM({"a": MockLLM(), "b": MockLLM()}, encoder=HashingEncoder())
    with pytest.warns(UnpricedLLMWarning, match=r"\['b'\] have no price"):
        MixLLM({"a": MockLLM(), "b": MockLLM()}, prices={"a": (1, 2)}, encoder=HashingEncoder())
    # free LLMs said to be free, a single child, or a trained router: nothing to warn about
    MixLLM(
        {"a": MockLLM(), "b": MockLLM()},
        prices={"a": (0, 0), "b": (0, 0)},
        encoder=HashingEncoder(),
    )
    MixLLM({"a": MockLLM()}, encoder=HashingEncoder())
