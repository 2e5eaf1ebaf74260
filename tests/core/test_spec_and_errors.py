from __future__ import annotations

import pytest

import mixllm_core
from mixllm_core import ConfigError, LLMSpec, MixLLMError
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
