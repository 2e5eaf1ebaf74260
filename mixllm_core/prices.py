"""List prices by model name, from the price table that ships with ``genai-prices``.

A pool member named ``"provider:model"`` (``"openai:gpt-4o-mini"``,
``"anthropic:claude-3-5-haiku-latest"``: LangChain's ``init_chat_model`` spelling) needs no
price from the user: :func:`spec_of` reads its USD per million input and output tokens, and its
context window, from `genai-prices <https://github.com/pydantic/genai-prices>`_.

Offline by design: the table is the one bundled with the installed ``genai-prices`` (update the
package for newer prices). ``genai-prices`` fetches newer prices only when an application starts
its ``UpdatePrices`` task, which mixllm never does; if your application starts it, the fetched
prices are the ones read here. Tiered prices (cheaper below a prompt length) give their base tier.

Example:
    >>> price_of("openai:gpt-4o-mini")
    (0.15, 0.6)
    >>> spec_of("anthropic:claude-3-5-haiku-latest").context_window
    200000
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .errors import ConfigError
from .spec import LLMSpec

__all__ = ["is_model_ref", "price_of", "spec_of", "split_model_ref"]

_HOW_TO_PRICE = (
    "pass its price yourself, e.g. prices={{{name!r}: (input, output)}} in USD per million "
    "tokens (an LLMSpec works too), or give a trained router"
)


def is_model_ref(name: str) -> bool:
    """Whether ``name`` is a ``"provider:model"`` reference (priced from the price table).

    Example:
        >>> is_model_ref("openai:gpt-4o-mini"), is_model_ref("small")
        (True, False)
    """
    provider, _, model = name.partition(":")
    return bool(provider.strip()) and bool(model.strip())


def split_model_ref(ref: str) -> tuple[str | None, str]:
    """``(provider, model)`` of ``"provider:model"``; ``(None, model)`` of a bare model id.

    Example:
        >>> split_model_ref("anthropic:claude-3-5-haiku-latest")
        ('anthropic', 'claude-3-5-haiku-latest')
        >>> split_model_ref("gpt-4o-mini")
        (None, 'gpt-4o-mini')
    """
    if not isinstance(ref, str) or not ref.strip():
        raise ConfigError(f"A model reference must be a non-empty string, got {ref!r}.")
    if is_model_ref(ref):
        provider, _, model = ref.partition(":")
        return provider.strip(), model.strip()
    return None, ref.strip()


def _base(value: Any) -> float | None:
    """USD per million tokens of a genai-prices price: a Decimal, or tiers (their base)."""
    value = getattr(value, "base", value)
    return float(value) if isinstance(value, Decimal) else None


def _lookup(ref: str) -> Any:
    """The genai-prices ``PriceCalculation`` of ``ref`` (its model and current prices)."""
    try:
        from genai_prices import Usage, __version__, calc_price
    except ImportError as exc:  # pragma: no cover - genai-prices is a dependency
        from .errors import MissingDependencyError

        raise MissingDependencyError(
            f"Pricing {ref!r} by name needs genai-prices: pip install genai-prices"
        ) from exc
    provider, model = split_model_ref(ref)
    try:
        return calc_price(Usage(input_tokens=0, output_tokens=0), model, provider_id=provider)
    except LookupError as exc:
        raise ConfigError(
            f"No price is known for {ref!r} in the price table of genai-prices {__version__} "
            f"({exc}): {_HOW_TO_PRICE.format(name=ref)}."
        ) from None


def price_of(model: str) -> tuple[float, float]:
    """``(input, output)`` list price of ``model`` in USD per million tokens.

    Args:
        model: ``"provider:model"`` (``"openai:gpt-4o-mini"``; LangChain's provider names such as
            ``google_genai`` or ``mistralai`` are understood) or a bare model id, whose provider
            is then guessed from the name.

    Raises:
        ConfigError: no price is known for ``model`` (the message says how to pass one).

    Example:
        >>> price_of("anthropic:claude-3-5-haiku-latest")
        (0.8, 4.0)
    """
    spec = spec_of(model)
    return spec.input_price, spec.output_price


def spec_of(model: str, name: str | None = None) -> LLMSpec:
    """The :class:`LLMSpec` of ``model`` from the price table: prices and context window.

    Args:
        model: As for :func:`price_of`.
        name: The spec's name (the router's LLM name); None: ``model`` itself.

    Raises:
        ConfigError: no input and output token price is known for ``model``.

    Example:
        >>> spec_of("openai:gpt-4o-mini", name="fast")
        LLMSpec(name='fast', input_price=0.15, output_price=0.6, context_window=128000, max_concurrency=None, tokens_per_second=None)
    """
    found = _lookup(model)
    prices = found.model_price
    input_price, output_price = _base(prices.input_mtok), _base(prices.output_mtok)
    if input_price is None or output_price is None:
        raise ConfigError(
            f"The price table knows {model!r} (as {found.provider.id}:{found.model.id}) but not "
            f"its price per input and output token: {_HOW_TO_PRICE.format(name=name or model)}."
        )
    window = found.model.context_window
    return LLMSpec(
        name or model,
        input_price=input_price,
        output_price=output_price,
        context_window=window if isinstance(window, int) and window > 0 else None,
    )
