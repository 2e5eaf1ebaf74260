"""Helpers of the LangChain adapter tests: a cold-start MixLLMChat over two scripted children."""

from __future__ import annotations

from typing import Any

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
