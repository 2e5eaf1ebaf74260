"""A per-call ``task=`` of MixLLM's chat and complete reaches the router and never the child."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse
from llama_index.core.bridge.pydantic import Field
from llama_index.core.tools import FunctionTool

from mixllm_core import ConfigError, MixLLMRouter
from mixllm_llamaindex import MixLLM
from mixllm_llamaindex.testing import ScriptedLLM, ToolLLM
from tests.conftest import HINT_CHOICES, HINT_TEXT, hint_router


class _KwargsLLM(ScriptedLLM):
    """A scripted child that records the keyword arguments of every completion (chat too)."""

    seen: list[dict[str, Any]] = Field(default_factory=list, exclude=True)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.seen.append(dict(kwargs))
        return super().complete(prompt, formatted, **kwargs)


@pytest.fixture(scope="module")
def router() -> MixLLMRouter:
    return hint_router()


def _mix(router: MixLLMRouter) -> tuple[MixLLM, list[_KwargsLLM]]:
    children = {name: _KwargsLLM(label=name) for name in router.llms}
    return MixLLM(children, router=router, lam=1.0, alpha=0.0), list(children.values())


def test_chat_and_complete_route_on_the_task_and_keep_it_from_the_child(
    router: MixLLMRouter,
) -> None:
    mix, children = _mix(router)
    for task, llm in HINT_CHOICES.items():
        extra = {} if task is None else {"task": task}
        assert mix.complete(HINT_TEXT, **extra).additional_kwargs["mixllm"]["llm"] == llm
        chat = mix.chat([ChatMessage(role="user", content=HINT_TEXT)], **extra)
        assert chat.additional_kwargs["mixllm"]["llm"] == llm
    done = asyncio.run(mix.acomplete(HINT_TEXT, task="code"))
    assert done.additional_kwargs["mixllm"]["llm"] == "coder-34b"
    streamed = list(mix.stream_complete(HINT_TEXT, task="math"))
    assert streamed[-1].text.startswith("math-pro")
    seen = [kw for child in children for kw in child.seen]
    assert len(seen) == 7 and all("task" not in kw for kw in seen)


def test_an_unknown_task_is_a_config_error(router: MixLLMRouter) -> None:
    with pytest.raises(ConfigError, match=r"Unknown task 'poetry'.*'code'"):
        _mix(router)[0].complete(HINT_TEXT, task="poetry")


def test_a_tool_call_routes_on_the_task_and_keeps_it_from_the_child(router: MixLLMRouter) -> None:
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    children = {name: ToolLLM(label=name, tool_args={"a": 6, "b": 7}) for name in router.llms}
    mix = MixLLM(children, router=router, lam=1.0, alpha=0.0)
    tool = FunctionTool.from_defaults(fn=multiply)
    for task, llm in HINT_CHOICES.items():
        extra = {} if task is None else {"task": task}
        response = mix.chat_with_tools([tool], user_msg=HINT_TEXT, **extra)
        assert response.additional_kwargs["mixllm"]["llm"] == llm
    calls = [kw for child in children.values() for kw in child.calls]
    assert len(calls) == 3 and all("task" not in kw and kw.get("tools") for kw in calls)
