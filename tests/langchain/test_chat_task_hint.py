"""A per-call ``task=`` reaches the router's route and never the child model."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.tools import tool
from langchain_helpers import KwargsChild

from mixllm_core import ConfigError, MixLLMRouter
from mixllm_langchain import MixLLMChat
from tests.conftest import HINT_CHOICES, HINT_TEXT, hint_router


@pytest.fixture(scope="module")
def router() -> MixLLMRouter:
    return hint_router()


def _chat(router: MixLLMRouter) -> MixLLMChat:
    models = {name: KwargsChild(model_name=name) for name in router.llms}
    return MixLLMChat(models=models, router=router, lam=1.0, alpha=0.0)


def _seen(chat: MixLLMChat) -> list[dict[str, Any]]:
    return [kw for child in chat.models.values() for kw in child.seen]  # type: ignore[attr-defined]


def test_a_per_call_task_routes_and_does_not_reach_the_child(router: MixLLMRouter) -> None:
    chat = _chat(router)
    for task, llm in HINT_CHOICES.items():
        extra = {} if task is None else {"task": task}
        reply = chat.invoke(HINT_TEXT, temperature=0.5, **extra)
        assert reply.response_metadata["model_name"] == llm
    seen = _seen(chat)
    assert len(seen) == 3 and all("task" not in kw and kw["temperature"] == 0.5 for kw in seen)


def test_bind_stream_and_async_carry_the_task(router: MixLLMRouter) -> None:
    chat = _chat(router)
    bound = chat.bind(task="math")
    assert bound.invoke(HINT_TEXT).response_metadata["model_name"] == "math-pro"
    chunks = list(chat.stream(HINT_TEXT, task="code"))
    assert "".join(str(c.text) for c in chunks).startswith("coder-34b")
    reply = asyncio.run(chat.ainvoke(HINT_TEXT, task="code"))
    assert reply.response_metadata["model_name"] == "coder-34b"
    assert all("task" not in kw for kw in _seen(chat))


def test_an_unknown_task_is_a_config_error(router: MixLLMRouter) -> None:
    with pytest.raises(ConfigError, match=r"Unknown task 'poetry'.*'code'"):
        _chat(router).invoke(HINT_TEXT, task="poetry")


def test_a_tool_calling_chat_carries_the_task_too(router: MixLLMRouter) -> None:
    @tool
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    chat = _chat(router)
    reply = chat.bind_tools([multiply]).invoke(HINT_TEXT, task="math")
    assert reply.response_metadata["model_name"] == "math-pro"
    seen = _seen(chat)
    assert len(seen) == 1 and "task" not in seen[0] and seen[0]["tools"]
