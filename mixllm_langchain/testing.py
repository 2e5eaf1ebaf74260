"""Offline chat models for tests and notebooks: deterministic, tool-calling, usage-reporting.

`ScriptedChatModel` is a real :class:`~langchain_core.language_models.BaseChatModel` that needs no
network and no model. It answers from a script (a fixed reply, or an echo of the last user
message), calls bound tools with arguments read from the prompt (integers and quoted strings),
honours ``stop`` and ``tool_choice``, reports ``usage_metadata`` and its ``model_name``, streams
word by word, and can be told to fail its first calls. It is what the standard LangChain suites
and the quickstart notebook run :class:`~mixllm_langchain.MixLLMChat` over.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

__all__ = ["ScriptedChatModel"]

_INT = re.compile(r"-?\d+")
_QUOTED = re.compile(r"'([^']+)'|\"([^\"]+)\"")
_WORDS = re.compile(r"\S+\s*")
_FORCING = {"any", "required"}


def _text(message: BaseMessage) -> str:
    return str(message.text)


def _n_tokens(text: str) -> int:
    return max(len(text.split()), 1)


def _json_type(prop: dict[str, Any]) -> str:
    if "type" in prop:
        kind = prop["type"]
        return kind[0] if isinstance(kind, list) else str(kind)
    for option in prop.get("anyOf", []):
        if option.get("type") not in (None, "null"):
            return str(option["type"])
    return "string"


def _tool_args(parameters: dict[str, Any], prompt: str) -> dict[str, Any]:
    """Tool-call arguments read off the prompt: integers in order, quoted text, else the prompt."""
    ints = iter(int(m) for m in _INT.findall(prompt))
    quoted = iter(a or b for a, b in _QUOTED.findall(prompt))
    args: dict[str, Any] = {}
    for name, prop in parameters.get("properties", {}).items():
        kind = _json_type(prop)
        if kind in ("integer", "number"):
            args[name] = next(ints, 0)
        elif kind == "boolean":
            args[name] = True
        elif kind == "array":
            args[name] = []
        elif kind == "object":
            args[name] = {}
        else:
            args[name] = next(quoted, None) or prompt
    return args


def _pick_tool(tools: list[dict[str, Any]], tool_choice: Any, prompt: str) -> dict[str, Any]:
    names = [t["function"]["name"] for t in tools]
    wanted = tool_choice
    if isinstance(tool_choice, dict):
        wanted = tool_choice.get("function", {}).get("name") or tool_choice.get("name")
    if isinstance(wanted, str) and wanted in names:
        return tools[names.index(wanted)]
    mentioned = [t for t, n in zip(tools, names, strict=True) if n in prompt]
    return mentioned[0] if mentioned else tools[0]


class ScriptedChatModel(BaseChatModel):
    """A deterministic offline chat model (see the module docstring).

    Args:
        model_name: Reported in ``response_metadata["model_name"]``.
        reply: The answer text; None echoes ``"<model_name>: <last user message>"``.
        fail_first: The first ``fail_first`` calls raise ``RuntimeError(error)``.
        error: Message of the scripted failure.
        calls: Messages of every call made to this model, failures included (read it in tests).

    Example:
        >>> child = ScriptedChatModel(model_name="small", reply="Paris.")
        >>> child.invoke("Capital of France?").text
        'Paris.'
        >>> child.invoke("Capital of France?").response_metadata["model_name"]
        'small'
    """

    model_name: str = "scripted"
    reply: str | None = None
    fail_first: int = 0
    error: str = "scripted failure"
    calls: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    # ------------------------------------------------------------------ the script
    def _respond(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        tools: list[dict[str, Any]] | None,
        tool_choice: Any,
    ) -> AIMessage:
        self.calls.append(list(messages))
        if len(self.calls) <= self.fail_first:
            raise RuntimeError(f"{self.model_name}: {self.error}")
        last = messages[-1] if messages else HumanMessage("")
        prompt = next((_text(m) for m in reversed(messages) if isinstance(m, HumanMessage)), "")
        forced = (
            tool_choice in _FORCING
            or tool_choice is True
            or (tool_choice not in (None, "auto", "none", False))
        )
        wants_tool = tools and tool_choice != "none" and (forced or isinstance(last, HumanMessage))
        usage_in = sum(_n_tokens(_text(m)) for m in messages)
        if tools and wants_tool:
            tool = _pick_tool(tools, tool_choice, prompt)
            call = {
                "name": tool["function"]["name"],
                "id": f"call_{self.model_name}_{len(self.calls)}",
                "args": _tool_args(tool["function"].get("parameters", {}), prompt),
                "type": "tool_call",
            }
            return self._message("", [call], usage_in, "tool_calls")
        if isinstance(last, ToolMessage):
            text = f"The tool {last.name or 'tool'} returned: {_text(last)}"
        else:
            text = self.reply if self.reply is not None else f"{self.model_name}: {prompt}"
        for token in stop or ():
            if token and token in text:
                text = text[: text.index(token)]
        return self._message(text, [], usage_in, "stop")

    def _message(self, text: str, tool_calls: list[Any], usage_in: int, finish: str) -> AIMessage:
        usage_out = _n_tokens(text) if text else len(tool_calls)
        usage = UsageMetadata(
            input_tokens=usage_in, output_tokens=usage_out, total_tokens=usage_in + usage_out
        )
        return AIMessage(
            content=text,
            tool_calls=tool_calls,
            usage_metadata=usage,
            response_metadata={
                "model_name": self.model_name,
                "model_provider": "scripted",
                "finish_reason": finish,
            },
        )

    def _chunks(self, message: AIMessage) -> Iterator[ChatGenerationChunk]:
        for piece in _WORDS.findall(str(message.content)):
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        for i, call in enumerate(message.tool_calls):
            yield ChatGenerationChunk(
                message=AIMessageChunk(
                    content="",
                    tool_call_chunks=[
                        {
                            "name": call["name"],
                            "args": json.dumps(call["args"], ensure_ascii=False),
                            "id": call["id"],
                            "index": i,
                            "type": "tool_call_chunk",
                        }
                    ],
                )
            )
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata=message.usage_metadata,
                response_metadata=dict(message.response_metadata),
                chunk_position="last",
            )
        )

    # ------------------------------------------------------------------ BaseChatModel
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._respond(messages, stop, tools, tool_choice)
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._generate(messages, stop, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from self._chunks(self._respond(messages, stop, tools, tool_choice))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._stream(messages, stop, **kwargs):
            yield chunk
