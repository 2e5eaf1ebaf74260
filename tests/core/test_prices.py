"""List prices by model name (genai-prices' bundled table, offline) and the pools built from them."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

from mixllm_core import ConfigError, LLMSpec
from mixllm_core.errors import UnpricedLLMWarning
from mixllm_core.factory import build_router, named_children, router_for
from mixllm_core.prices import is_model_ref, price_of, spec_of, split_model_ref
from mixllm_core.testing import HashingEncoder


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    """The price table is read with sockets off: it must never be fetched."""
    from pytest_socket import disable_socket, enable_socket

    disable_socket(allow_unix_socket=True)
    yield
    enable_socket()


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("openai:gpt-4o-mini", (0.15, 0.6)),
        ("anthropic:claude-3-5-haiku-latest", (0.8, 4.0)),
        ("gpt-4o-mini", (0.15, 0.6)),  # a bare id: the provider is found from the name
        ("google_genai:gemini-2.5-pro", (1.25, 10.0)),  # LangChain's provider name; base tier
        ("mistralai:mistral-large-latest", price_of("mistral:mistral-large-latest")),
    ],
)
def test_list_prices_in_usd_per_million_tokens(ref: str, expected: tuple[float, float]) -> None:
    assert price_of(ref) == expected


def test_spec_carries_the_context_window_and_takes_the_pool_name() -> None:
    spec = spec_of("openai:gpt-4o-mini", name="fast")
    assert spec == LLMSpec("fast", 0.15, 0.6, context_window=128_000)
    assert spec.cost(1_000_000, 1_000_000) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("openai:gpt-9-imaginary", r"No price is known for 'openai:gpt-9-imaginary'.*prices="),
        ("nowhere:some-model", r"No price is known for 'nowhere:some-model'.*prices="),
        ("openai:text-embedding-3-small", r"knows 'openai:text-embedding-3-small'.*prices="),
    ],
)
def test_an_unknown_price_names_the_model_and_how_to_pass_one(ref: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        price_of(ref)


def test_model_references() -> None:
    assert split_model_ref(" openai : gpt-4o ") == ("openai", "gpt-4o")
    assert [is_model_ref(n) for n in ("a:b", "small", ":b", "a:", "x:y:z")] == [
        True,
        False,
        False,
        False,
        True,
    ]
    with pytest.raises(ConfigError, match="non-empty string"):
        split_model_ref("")


def test_a_cold_router_prices_provider_model_names_and_keeps_given_prices() -> None:
    router = build_router(
        ["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest", "local"],
        prices={"anthropic:claude-3-5-haiku-latest": (1.0, 2.0)},
        encoder=HashingEncoder(),
    )
    assert router.specs["openai:gpt-4o-mini"].output_price == 0.6
    assert router.specs["anthropic:claude-3-5-haiku-latest"].output_price == 2.0  # given wins
    assert router.specs["local"].output_price == 0.0
    with pytest.raises(ConfigError, match="openai:gpt-9-imaginary"):
        build_router(["openai:gpt-9-imaginary", "b"], encoder=HashingEncoder())


def test_named_children_builds_strings_and_prices_aliases() -> None:
    built: list[str] = []

    def build(ref: str) -> str:
        built.append(ref)
        return ref.upper()

    children, prices = named_children(["openai:gpt-4o-mini", "openai:gpt-4o"], build)
    assert children == {
        "openai:gpt-4o-mini": "OPENAI:GPT-4O-MINI",
        "openai:gpt-4o": "OPENAI:GPT-4O",
    }
    assert prices is None  # named by their references: build_router prices them
    children, prices = named_children(
        {"fast": "openai:gpt-4o-mini", "own": 42, "slow": "openai:gpt-4o"},
        build,
        prices={"slow": (9.0, 9.0)},
    )
    assert children["own"] == 42 and prices is not None  # a model object: kept as it is
    assert built[-2:] == ["openai:gpt-4o-mini", "openai:gpt-4o"]
    assert prices["fast"] == spec_of("openai:gpt-4o-mini", name="fast")
    assert prices["slow"] == (9.0, 9.0)  # a given price is kept
    _, unpriced = named_children({"fast": "openai:gpt-4o-mini"}, build, priced=False)
    assert unpriced is None  # a trained router prices the calls


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ("openai:gpt-4o-mini", "a list of 'provider:model' strings"),
        (["openai:gpt-4o", "openai:gpt-4o"], "each once"),
        (["openai:gpt-4o", 3], "each once"),
    ],
)
def test_named_children_rejects_what_it_cannot_name(models: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        named_children(models, str)  # type: ignore[arg-type]


def test_an_integration_pool_without_prices_warns_once_and_says_how_to_fix_it() -> None:
    children = {"a": 1, "b": 2}
    with pytest.warns(UnpricedLLMWarning, match="coin flip") as caught:
        router_for(children, encoder=HashingEncoder())
    assert len(caught) == 1 and "prices=" in str(caught[0].message)
    with pytest.warns(UnpricedLLMWarning, match=r"\['b'\] have no price"):
        router_for(children, prices={"a": (1, 2)}, encoder=HashingEncoder())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        router_for(children, prices={"a": (0, 0), "b": (0, 0)}, encoder=HashingEncoder())
        router_for(
            {"openai:gpt-4o-mini": 1, "b": 2}, prices={"b": (1, 1)}, encoder=HashingEncoder()
        )
        router_for({"only": 1}, encoder=HashingEncoder())
        trained = build_router(["a", "b"], encoder=HashingEncoder())  # the core builder: silent
        router_for(children, router=trained)
