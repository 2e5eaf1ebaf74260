"""mixllm_langchain: MixLLM routing as a LangChain chat model.

Public API::

    MixLLMChat             a BaseChatModel that routes each call to one of its child chat models
    MixLLMFeedbackHandler  a callback handler: run outcomes → router, run ids → decision ids
    RunLedger              which decisions were made under which run (shared by the two)

Offline test doubles live in :mod:`mixllm_langchain.testing` (``ScriptedChatModel``).
"""

from __future__ import annotations

from .callbacks import MixLLMFeedbackHandler, RunLedger
from .chat_models import MixLLMChat

__all__ = ["MixLLMChat", "MixLLMFeedbackHandler", "RunLedger"]
