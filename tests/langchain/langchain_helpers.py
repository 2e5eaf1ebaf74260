"""Helpers of the LangChain adapter tests: a cold-start MixLLMChat over two scripted children."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from pydantic import Field

from mixllm_core.testing import HashingEncoder
from mixllm_langchain import MixLLMChat
from mixllm_langchain.testing import ScriptedChatModel

PRICES = {"cheap": (0.1, 0.4), "pricey": (5.0, 15.0)}


def make_chat(**overrides: Any) -> MixLLMChat:
    """A cold-start MixLLMChat over two scripted children (``cheap`` and ``pricey``)."""
    params = {
        "models": {n: ScriptedChatModel(model_name=n) for n in PRICES},
        "prices": PRICES,
        "encoder": HashingEncoder(),
        "alpha": 0.0,
    }
    params.update(overrides)
    return MixLLMChat(**params)


class KwargsChild(ScriptedChatModel):
    """A scripted child that records the keyword arguments of every call."""

    seen: list[dict[str, Any]] = Field(default_factory=list)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(dict(kwargs))
        return super()._generate(messages, stop, run_manager, **kwargs)
