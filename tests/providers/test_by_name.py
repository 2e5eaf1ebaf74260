"""Children given by name, the errors that name what is wrong, and a trained router's prices."""

from __future__ import annotations

import pytest
from langchain_openai import ChatOpenAI
from provider_fakes import FakeAPI

from mixllm_core import LLMSpec, MixLLMRouter
from mixllm_core.errors import MissingDependencyError
from mixllm_core.prices import price_of
from mixllm_core.testing import HashingEncoder
from mixllm_langchain import MixLLMChat
from mixllm_langchain.providers import chat_model
from mixllm_llamaindex import MixLLM
from mixllm_llamaindex.providers import llm

MINI = "openai:gpt-4o-mini"


def test_an_alias_is_built_from_its_reference_and_priced_under_its_own_name(
    openai_api: FakeAPI,
) -> None:
    chat = MixLLMChat(models={"fast": MINI, "strong": "openai:gpt-4o"}, encoder=HashingEncoder())
    assert isinstance(chat.models["fast"], ChatOpenAI)
    assert chat.models["fast"].model_name == "gpt-4o-mini"
    spec = chat._router().specs["fast"]
    assert (spec.name, (spec.input_price, spec.output_price)) == ("fast", price_of(MINI))
    assert 0 < spec.input_price <= spec.output_price
    reply = chat.invoke("hi", model="fast")
    assert reply.response_metadata["mixllm"]["cost"] == pytest.approx(spec.cost(1200, 300))


def test_with_a_trained_router_its_specs_price_the_calls(openai_api: FakeAPI) -> None:
    names = ["openai:gpt-4o-mini", "openai:gpt-4o"]
    router = MixLLMRouter([LLMSpec(n, 1.0, 1.0) for n in names], encoder=HashingEncoder())
    chat = MixLLMChat(models=names, router=router)
    reply = chat.invoke("hi", model=names[0])
    assert reply.response_metadata["mixllm"]["cost"] == pytest.approx(
        LLMSpec("x", 1, 1).cost(1200, 300)
    )


def test_an_unknown_price_names_the_model_and_how_to_pass_one(openai_api: FakeAPI) -> None:
    with pytest.raises(
        ValueError, match=r"No price is known for 'openai:gpt-9-imaginary'.*prices="
    ):
        MixLLMChat(models=["openai:gpt-9-imaginary", "openai:gpt-4o"], encoder=HashingEncoder())
    # a price given by the user is enough
    chat = MixLLMChat(
        models=["openai:gpt-9-imaginary", "openai:gpt-4o"],
        prices={"openai:gpt-9-imaginary": (1.0, 2.0)},
        encoder=HashingEncoder(),
    )
    assert chat._router().specs["openai:gpt-9-imaginary"].output_price == 2.0


def test_a_provider_langchain_does_not_know_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="Cannot build a chat model from 'nowhere:model'"):
        chat_model("nowhere:model")


def test_llamaindex_providers_by_name() -> None:
    with pytest.raises(ValueError, match=r"'nowhere:model'.*provider of \["):
        llm("nowhere:model")
    with pytest.raises(MissingDependencyError, match="pip install llama-index-llms-anthropic"):
        llm("anthropic:claude-3-5-haiku-latest")
    mix = MixLLM({"fast": MINI, "strong": "openai:gpt-4o"}, encoder=HashingEncoder())
    spec = mix.router.specs["fast"]
    assert (spec.input_price, spec.output_price) == price_of(MINI)
    assert 0 < spec.input_price <= spec.output_price
    assert mix.models["fast"].model == "gpt-4o-mini"
