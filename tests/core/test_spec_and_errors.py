from __future__ import annotations

import pytest

import mixllm_core
from mixllm_core import ConfigError, LLMSpec, MixLLMError, MixLLMRouter
from mixllm_core.errors import NotFittedError, UnknownLLMError


def test_public_api_is_pinned() -> None:
    assert "MixLLMRouter" in mixllm_core.__all__
    assert sorted(mixllm_core.__all__) == mixllm_core.__all__
    for name in mixllm_core.__all__:
        assert hasattr(mixllm_core, name), name


def test_errors_also_subclass_builtins() -> None:
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
    assert issubclass(UnknownLLMError, KeyError) and issubclass(UnknownLLMError, MixLLMError)
    err = UnknownLLMError("gpt-5", ["a", "b"])
    assert "gpt-5" in str(err) and "['a', 'b']" in str(err)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": ""}, "non-empty"),
        ({"name": "a", "input_price": -1.0}, "input_price"),
        ({"name": "a", "output_price": float("nan")}, "output_price"),
        ({"name": "a", "context_window": 0}, "context_window"),
        ({"name": "a", "max_concurrency": 1.5}, "max_concurrency"),
    ],
)
def test_llmspec_rejects_bad_values(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        LLMSpec(**kwargs)


def test_llmspec_cost_and_round_trip() -> None:
    spec = LLMSpec("m", input_price=2.0, output_price=8.0, context_window=8192)
    assert spec.cost(1_000_000, 0) == pytest.approx(2.0)
    assert spec.cost(500, 250) == pytest.approx((500 * 2 + 250 * 8) / 1e6)
    assert LLMSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ConfigError, match="Unknown LLMSpec fields"):
        LLMSpec.from_dict({"name": "x", "price": 1})


def test_llmspec_prices_a_call_from_reported_or_estimated_tokens() -> None:
    spec = LLMSpec("mid", input_price=1.0, output_price=2.0)
    reported = spec.price_call("prompt", "answer", (1000, 500))
    assert (reported.input_tokens, reported.output_tokens, reported.estimated) == (1000, 500, False)
    assert reported.cost == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6)
    estimated = spec.price_call("x" * 400, None)
    assert (estimated.input_tokens, estimated.output_tokens, estimated.estimated) == (100, 0, True)
    assert spec.price_call("x" * 400, "y" * 40).cost == pytest.approx(spec.cost(100, 10))


# ---------------------------------------------------------------------- the cold-start factory
@pytest.mark.parametrize(
    "price",
    [
        (0.15, 0.6),
        [0.15, 0.6],
        {"input_price": 0.15, "output_price": 0.6},
        LLMSpec("small", 0.15, 0.6),
    ],
)
def test_one_price_parser_reads_every_form(price: object) -> None:
    from mixllm_core.factory import spec_from_price

    assert spec_from_price("small", price) == LLMSpec("small", 0.15, 0.6)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("price", "fragment"),
    [
        ("free", r"prices\['small'\] must be \(input_price, output_price\)"),
        ((1.0, 2.0, 3.0), r"got \(1.0, 2.0, 3.0\)"),
        (LLMSpec("other"), "an LLMSpec named 'other'"),
        ({"input_price": 1.0, "speed": 3}, r"Unknown LLMSpec fields \['speed'\]"),
        ((-1.0, 0.0), "input_price of 'small' must be a finite number >= 0"),
    ],
)
def test_the_price_parser_names_what_is_wrong(price: object, fragment: str) -> None:
    from mixllm_core.factory import spec_from_price

    with pytest.raises(ConfigError, match=fragment):
        spec_from_price("small", price)  # type: ignore[arg-type]


def test_build_router_is_the_cold_start_router_of_both_adapters() -> None:
    from mixllm_core.factory import DEFAULT_ALPHA, DEFAULT_LAM, build_router
    from mixllm_core.testing import HashingEncoder

    router = build_router(
        {"small": object(), "large": object()},
        prices={"small": (0.15, 0.6), "large": (2.5, 10.0)},
        encoder=HashingEncoder(),
    )
    assert router.llms == ["small", "large"] and router.specs["large"].output_price == 10.0
    assert (router.policy.lam, router.policy.alpha) == (DEFAULT_LAM, DEFAULT_ALPHA) == (1.0, 0.1)
    assert build_router(["a"], lam=3.0, alpha=0.0, encoder=HashingEncoder()).policy.lam == 3.0
    assert build_router(["a", "b"], encoder=HashingEncoder()).specs["b"].input_price == 0.0
    with pytest.raises(ConfigError, match=r"prices name \['c'\], which are not children"):
        build_router(["a", "b"], prices={"c": (1, 1)}, encoder=HashingEncoder())
    with pytest.raises(ConfigError, match="at least one LLM"):
        build_router([])


def test_router_for_checks_a_given_router_and_overrides_apply_per_call() -> None:
    from mixllm_core.factory import policy_override, router_for
    from mixllm_core.testing import HashingEncoder

    given = MixLLMRouter(["a", "b"], encoder=HashingEncoder())
    assert router_for({"a": 1, "b": 2}, router=given) is given
    with pytest.raises(ConfigError, match=r"no child for \['b'\]; not in the router: \['c'\]"):
        router_for({"a": 1, "c": 2}, router=given)
    with pytest.raises(ConfigError, match="prices and encoder configure a cold-start router"):
        router_for({"a": 1, "b": 2}, router=given, prices={}, encoder=HashingEncoder())
    override = policy_override(given, lam=5.0, alpha=0.2)["policy"]
    assert (override.lam, override.alpha) == (5.0, 0.2)
    assert (given.policy.lam, given.policy.alpha) == (1.0, 0.0)  # the shared router is untouched
    assert policy_override(given) == {}
