"""mixllm_langchain: MixLLM routing as a LangChain chat model.

Public API::

    MixLLMChat             a BaseChatModel that routes each call to one of its child chat models
    MixLLMDecisionModel    the router as a decision model: the classifier of ModelRouterMiddleware
    MixLLMFeedbackHandler  a callback handler mapping run ids (a call's, a chain's) to decisions
    RunLedger              which decisions were made under which run (shared by the two)
    __version__            the installed mixllm version

Offline test doubles live in :mod:`mixllm_langchain.testing` (``ScriptedChatModel``). The router,
the cold-start factory and the dispatcher that calls the children are in :mod:`mixllm_core`.
"""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    from mixllm_core.errors import MissingDependencyError

    raise MissingDependencyError(
        "mixllm_langchain needs langchain-core: pip install 'mixllm[langchain]'"
    ) from exc

from mixllm_core import __version__

from .callbacks import MixLLMFeedbackHandler, RunLedger
from .chat_models import MixLLMChat
from .decisions import MixLLMDecisionModel

__all__ = [
    "MixLLMChat",
    "MixLLMDecisionModel",
    "MixLLMFeedbackHandler",
    "RunLedger",
    "__version__",
]
