"""Children of :class:`~mixllm_langchain.MixLLMChat` given by name: ``"provider:model"`` strings.

``MixLLMChat(models=["openai:gpt-4o-mini", "anthropic:claude-3-5-haiku-latest"])`` builds each
child with LangChain's ``init_chat_model`` (the provider's package, e.g. ``langchain-openai``,
must be installed, and its API key set as usual) and prices it from the price table of
:mod:`mixllm_core.prices`. ``models={"openai:gpt-4o-mini": ChatOpenAI(...)}`` keeps your model
object and still takes the list price from its name; ``models={"fast": "openai:gpt-4o-mini"}``
names a built child ``fast``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from langchain_core.language_models import BaseChatModel

from mixllm_core.errors import ConfigError, MissingDependencyError
from mixllm_core.factory import named_children

__all__ = ["chat_model"]


def chat_model(ref: str, **kwargs: Any) -> BaseChatModel:
    """The chat model of ``"provider:model"``, built by LangChain's ``init_chat_model``.

    Args:
        ref: ``"openai:gpt-4o-mini"``, ``"anthropic:claude-3-5-haiku-latest"``... (a bare model
            id works when LangChain can infer its provider).
        **kwargs: Passed to the provider's class (``temperature``, ``http_client``...).

    Raises:
        MissingDependencyError: ``langchain`` or the provider's package is not installed (the
            message names the pip command).
        ConfigError: LangChain cannot build a model from ``ref``.

    Example:
        >>> model = chat_model("openai:gpt-4o-mini", api_key="sk-dummy")
        >>> type(model).__name__, model.model_name
        ('ChatOpenAI', 'gpt-4o-mini')
    """
    try:
        from langchain.chat_models import init_chat_model
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"Building {ref!r} by name needs langchain's init_chat_model: "
            "pip install 'mixllm[agents]' (or pip install langchain)"
        ) from exc
    try:
        return cast(BaseChatModel, init_chat_model(ref, **kwargs))
    except ImportError as exc:
        raise MissingDependencyError(f"Cannot build {ref!r}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"Cannot build a chat model from {ref!r}: {exc}") from exc


def resolve_models(arguments: dict[str, Any]) -> dict[str, Any]:
    """``MixLLMChat``'s arguments with the children given as strings built and priced.

    Children given as model objects only are passed on as they are. With ``router=`` the
    router's specs price the calls, so no price is looked up.
    """
    models = arguments.get("models")
    if models is None or (
        isinstance(models, Mapping) and not any(isinstance(v, str) for v in models.values())
    ):
        return arguments
    children, prices = named_children(
        models,
        chat_model,
        prices=arguments.get("prices"),
        priced=arguments.get("router") is None,
    )
    return {**arguments, "models": children, "prices": prices}
