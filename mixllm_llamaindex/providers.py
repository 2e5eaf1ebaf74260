"""Children of :class:`~mixllm_llamaindex.MixLLM` given by name: ``"provider:model"`` strings.

``MixLLM(models=["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest"])`` builds each
child with the provider's LlamaIndex class (``llama_index.llms.openai.OpenAI``...; its package,
e.g. ``llama-index-llms-openai``, must be installed and its API key set as usual) and prices it
from the price table of :mod:`mixllm_core.prices`. ``models={"openai:gpt-4o-mini": OpenAI(...)}``
keeps your LLM object and still takes the list price from its name;
``models={"fast": "openai:gpt-4o-mini"}`` names a built child ``fast``.

The providers known by name are those of :data:`PROVIDERS`; build any other LLM yourself and
give it with a price.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.llms.llm import LLM

from mixllm_core.errors import ConfigError, MissingDependencyError
from mixllm_core.factory import Price, named_children
from mixllm_core.prices import split_model_ref

__all__ = ["PROVIDERS", "llm"]

#: provider → (module, class, pip package) of its LlamaIndex LLM; the class takes ``model=``.
PROVIDERS: dict[str, tuple[str, str, str]] = {
    "openai": ("llama_index.llms.openai", "OpenAI", "llama-index-llms-openai"),
    "anthropic": ("llama_index.llms.anthropic", "Anthropic", "llama-index-llms-anthropic"),
    "google_genai": (
        "llama_index.llms.google_genai",
        "GoogleGenAI",
        "llama-index-llms-google-genai",
    ),
    "mistralai": ("llama_index.llms.mistralai", "MistralAI", "llama-index-llms-mistralai"),
    "groq": ("llama_index.llms.groq", "Groq", "llama-index-llms-groq"),
    "deepseek": ("llama_index.llms.deepseek", "DeepSeek", "llama-index-llms-deepseek"),
    "ollama": ("llama_index.llms.ollama", "Ollama", "llama-index-llms-ollama"),
}


def llm(ref: str, **kwargs: Any) -> LLM:
    """The LlamaIndex LLM of ``"provider:model"`` (a provider of :data:`PROVIDERS`).

    Args:
        ref: ``"openai:gpt-4o-mini"``, ``"anthropic:claude-3-5-haiku-latest"``...
        **kwargs: Passed to the provider's class (``temperature``, ``http_client``...). An
            OpenAI LLM asks for usage in streams too (``stream_options``) unless
            ``additional_kwargs`` is given: a streamed call is then priced from reported
            tokens rather than estimated.

    Raises:
        ConfigError: ``ref`` names no provider, or one not in :data:`PROVIDERS`.
        MissingDependencyError: the provider's package is not installed (the message names
            the pip command).

    Example:
        >>> model = llm("openai:gpt-4o-mini", api_key="sk-dummy")
        >>> type(model).__name__, model.model
        ('OpenAI', 'gpt-4o-mini')
    """
    provider, model = split_model_ref(ref)
    if provider not in PROVIDERS:
        raise ConfigError(
            f"Cannot build a LlamaIndex LLM from {ref!r}: name it 'provider:model' with a "
            f"provider of {sorted(PROVIDERS)}, or build the LLM yourself and pass it with its "
            "price."
        )
    module, class_name, package = PROVIDERS[provider]
    try:
        cls = getattr(importlib.import_module(module), class_name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"Building {ref!r} needs {package}: pip install {package}"
        ) from exc
    if provider == "openai":
        kwargs.setdefault("additional_kwargs", {"stream_options": {"include_usage": True}})
    built: LLM = cls(model=model, **kwargs)
    return built


def resolve_models(
    models: Sequence[str] | Mapping[str, Any] | None,
    prices: Mapping[str, Price] | None,
    *,
    priced: bool,
) -> tuple[dict[str, Any], Mapping[str, Price] | None]:
    """``MixLLM``'s children with those given as strings built, and the prices looked up."""
    if models is None or (
        isinstance(models, Mapping) and not any(isinstance(v, str) for v in models.values())
    ):
        return dict(models or {}), prices
    return named_children(models, llm, prices=prices, priced=priced)
