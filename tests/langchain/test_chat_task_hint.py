"""A per-call ``task=`` reaches the router's route and never the child model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.tools import tool
from pydantic import Field

from mixllm_core import ConfigError, MixLLMRouter
from mixllm_core.encoders import TaggedEncoder
from mixllm_core.testing import HashingEncoder, make_synthetic_world
from mixllm_langchain import MixLLMChat
from mixllm_langchain.testing import ScriptedChatModel

TEXT = "Hello there"  # a query the tagger cannot place
#: What the synthetic world's router picks for TEXT at λ = 1 with each hint (None: no hint).
EXPECTED = {"code": "coder-34b", "math": "math-pro", None: "mid-70b"}


class _KwargsChild(ScriptedChatModel):
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


@pytest.fixture(scope="module")
def router() -> MixLLMRouter:
    enc = TaggedEncoder(HashingEncoder(), fit_with_router=True, seed=0)
    return MixLLMRouter(encoder=enc, seed=0).fit(make_synthetic_world(400, seed=0))


def _chat(router: MixLLMRouter) -> MixLLMChat:
    models = {name: _KwargsChild(model_name=name) for name in router.llms}
    return MixLLMChat(models=models, router=router, lam=1.0, alpha=0.0)


def _seen(chat: MixLLMChat) -> list[dict[str, Any]]:
    return [kw for child in chat.models.values() for kw in child.seen]  # type: ignore[attr-defined]


def test_a_per_call_task_routes_and_does_not_reach_the_child(router: MixLLMRouter) -> None:
    chat = _chat(router)
    for task, llm in EXPECTED.items():
        extra = {} if task is None else {"task": task}
        reply = chat.invoke(TEXT, temperature=0.5, **extra)
        assert reply.response_metadata["model_name"] == llm
    seen = _seen(chat)
    assert len(seen) == 3 and all("task" not in kw and kw["temperature"] == 0.5 for kw in seen)


def test_bind_stream_and_async_carry_the_task(router: MixLLMRouter) -> None:
    chat = _chat(router)
    bound = chat.bind(task="math")
    assert bound.invoke(TEXT).response_metadata["model_name"] == "math-pro"
    chunks = list(chat.stream(TEXT, task="code"))
    assert "".join(str(c.text) for c in chunks).startswith("coder-34b")
    reply = asyncio.run(chat.ainvoke(TEXT, task="code"))
    assert reply.response_metadata["model_name"] == "coder-34b"
    assert all("task" not in kw for kw in _seen(chat))


def test_an_unknown_task_is_a_config_error(router: MixLLMRouter) -> None:
    with pytest.raises(ConfigError, match=r"Unknown task 'poetry'.*'code'"):
        _chat(router).invoke(TEXT, task="poetry")


def test_a_tool_calling_chat_carries_the_task_too(router: MixLLMRouter) -> None:
    @tool
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    chat = _chat(router)
    reply = chat.bind_tools([multiply]).invoke(TEXT, task="math")
    assert reply.response_metadata["model_name"] == "math-pro"
    seen = _seen(chat)
    assert len(seen) == 1 and "task" not in seen[0] and seen[0]["tools"]
