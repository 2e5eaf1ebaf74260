"""Scripted child LLMs for the LlamaIndex adapter tests (imported by the tests and conftest)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    ToolCallBlock,
)
from llama_index.core.bridge.pydantic import Field
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.mock import MockFunctionCallingLLM

from mixllm_core.testing import HashingEncoder
from mixllm_llamaindex import MixLLM


class ScriptedLLM(CustomLLM):
    """A completion child answering ``"<label>: <reply>"``; records each call; may always fail."""

    label: str
    reply: str = "an answer"
    fail: bool = False
    window: int = 4096
    calls: list[str] = Field(default_factory=list, exclude=True)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.window, num_output=64, model_name=self.label)

    def _answer(self, method: str) -> str:
        self.calls.append(method)
        if self.fail:
            raise RuntimeError(f"{self.label} is down")
        return f"{self.label}: {self.reply}"

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(
            text=self._answer("complete"),
            additional_kwargs={"prompt_tokens": 7, "completion_tokens": 3},
        )

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        words = self._answer("stream_complete").split(" ")

        def gen() -> CompletionResponseGen:
            text = ""
            for i, word in enumerate(words):
                delta = word if i == 0 else " " + word
                text += delta
                yield CompletionResponse(text=text, delta=delta)

        return gen()


class ToolLLM(MockFunctionCallingLLM):
    """A function-calling child: calls the first tool with ``tool_args``, then answers."""

    label: str
    tool_args: dict[str, Any] = Field(default_factory=dict)
    calls: list[dict[str, Any]] = Field(default_factory=list, exclude=True)

    def _get_response_generator(self) -> Any:
        return self._respond

    def _respond(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        self.calls.append(kwargs)
        tool_results = [m for m in messages if m.role == MessageRole.TOOL]
        if tool_results:
            return ChatMessage(
                role="assistant", content=f"{self.label}: the result is {tool_results[-1].content}"
            )
        tools = kwargs.get("tools") or []
        if tools:
            block = ToolCallBlock(
                tool_call_id=f"call-{len(self.calls)}",
                tool_name=tools[0].metadata.name,
                tool_kwargs=self.tool_args,
            )
            return ChatMessage(role="assistant", blocks=[block])
        return ChatMessage(role="assistant", content=f"{self.label}: {messages[-1].content}")


PRICES = {"small": (0.1, 0.4), "big": (5.0, 15.0)}


def make_mix(children: dict[str, Any], **kwargs: Any) -> MixLLM:
    """A cold-start MixLLM over ``children`` with the fast hashing encoder."""
    kwargs.setdefault("prices", {n: p for n, p in PRICES.items() if n in children})
    return MixLLM(children, encoder=HashingEncoder(), **kwargs)
