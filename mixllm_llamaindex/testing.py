"""Offline child LLMs for tests and notebooks: deterministic, usage-reporting, able to fail.

`ScriptedLLM` is a completion LLM that answers ``"<label>: <reply>"`` and `ToolLLM` a
function-calling one that calls the first tool it is given, then answers with the tool's result.
Both are real LlamaIndex LLMs that need no network and no model, and record every call; they are
what the tests run :class:`~mixllm_llamaindex.MixLLM` over. LlamaIndex's own ``MockLLM`` and
``MockFunctionCallingLLM`` work as children too.
"""

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

__all__ = ["ScriptedLLM", "ToolLLM"]


class ScriptedLLM(CustomLLM):
    """A completion LLM answering ``"<label>: <reply>"``; records each call; may always fail.

    Args:
        label: Its name in answers and ``metadata.model_name``.
        reply: The answer after the label.
        fail: Every call raises ``RuntimeError(error)``.
        error: Message of the failure (default ``"<label> is down"``).
        window: ``metadata.context_window``.
        usage: ``(prompt_tokens, completion_tokens)`` reported with a whole completion
            (streams report none).
        calls: The method of every call made, failures included (read it in tests).

    Example:
        >>> llm = ScriptedLLM(label="small", reply="Paris.")
        >>> llm.complete("Capital of France?").text
        'small: Paris.'
        >>> [r.delta for r in llm.stream_complete("Capital of France?")], llm.calls
        (['small:', ' Paris.'], ['complete', 'stream_complete'])
    """

    label: str
    reply: str = "an answer"
    fail: bool = False
    error: str | None = None
    window: int = 4096
    usage: tuple[int, int] = (7, 3)
    calls: list[str] = Field(default_factory=list, exclude=True)

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self.window, num_output=64, model_name=self.label)

    def _answer(self, method: str) -> str:
        self.calls.append(method)
        if self.fail:
            raise RuntimeError(self.error or f"{self.label} is down")
        return f"{self.label}: {self.reply}"

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        prompt_tokens, completion_tokens = self.usage
        return CompletionResponse(
            text=self._answer("complete"),
            additional_kwargs={
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
            },
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
    """A function-calling LLM: calls the first tool with ``tool_args``, then answers with its result.

    Args:
        label: Its name in answers.
        tool_args: The arguments of every tool call it makes.
        calls: The keyword arguments of every call (``tools`` among them), for tests.

    Example:
        >>> from llama_index.core.tools import FunctionTool
        >>> def multiply(a: int, b: int) -> int:
        ...     "Multiply two integers."
        ...     return a * b
        >>> llm = ToolLLM(label="small", tool_args={"a": 6, "b": 7})
        >>> tool = FunctionTool.from_defaults(fn=multiply)
        >>> str(llm.predict_and_call([tool], user_msg="What is 6 times 7?"))
        '42'
    """

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
