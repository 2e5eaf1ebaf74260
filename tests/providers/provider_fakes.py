"""Fake OpenAI and Anthropic HTTP APIs, served through the real SDKs' transports, offline.

``FakeAPI`` answers the two endpoints the provider classes call (OpenAI's
``/v1/chat/completions``, Anthropic's ``/v1/messages``) in the providers' own wire format: plain
answers, tool calls when the request carries tools (and no tool result is pending), and
server-sent events when the request streams. Every answer reports ``input_tokens`` and
``output_tokens`` of usage, in the provider's shape, so a test can check the cost read back.

- OpenAI's SDK speaks ``httpx``: :func:`openai_routes` mounts the fake with respx, which also
  catches clients built inside ``init_chat_model`` or LlamaIndex's ``OpenAI``.
- Anthropic's SDK speaks ``httpx2``, which respx does not patch: :func:`patch_anthropic` hands
  ``ChatAnthropic`` an SDK client over ``httpx2.MockTransport`` (its one seam for the HTTP client
  is the module function that builds it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
import respx

OPENAI_URL = "https://api.openai.com/v1/chat/completions"
ANTHROPIC_URL = "https://api.anthropic.com/v1/messages"


@dataclass
class FakeAPI:
    """A provider API that answers every request; ``requests`` keeps the JSON bodies received.

    Attributes:
        input_tokens, output_tokens: The usage every answer reports.
        tool_args: Arguments of the tool call, by tool name (``{}`` for a tool not listed).
        text: The answer text; ``{model}`` is replaced by the requested model.
    """

    input_tokens: int = 1200
    output_tokens: int = 300
    tool_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    text: str = "{model} says hi"
    requests: list[dict[str, Any]] = field(default_factory=list)

    def models(self) -> list[str]:
        """The model of every request, in order."""
        return [r["model"] for r in self.requests]

    # ------------------------------------------------------------------ what to answer
    def _answer(self, body: dict[str, Any]) -> tuple[str, str | None]:
        """``(text, tool name)``: a tool call when tools came and no tool result is pending."""
        self.requests.append(body)
        last = body["messages"][-1]
        content = last.get("content")
        tool_result = last.get("role") == "tool" or (
            isinstance(content, list) and any(b.get("type") == "tool_result" for b in content)
        )
        tools = body.get("tools") or []
        if tools and not tool_result:
            first = tools[0]
            return "", first["function"]["name"] if "function" in first else first["name"]
        return self.text.format(model=body["model"]), None

    # ------------------------------------------------------------------ OpenAI
    def openai(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        text, tool = self._answer(body)
        call = (
            [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": tool,
                        "arguments": json.dumps(self.tool_args.get(tool, {})),
                    },
                }
            ]
            if tool
            else None
        )
        usage = {
            "prompt_tokens": self.input_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }
        base = {"id": "chatcmpl-1", "created": 1, "model": body["model"]}
        finish = "tool_calls" if tool else "stop"
        if not body.get("stream"):
            message = {"role": "assistant", "content": text or None, "tool_calls": call}
            choice = {"index": 0, "message": message, "finish_reason": finish}
            return httpx.Response(
                200, json={**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
        chunk = {**base, "object": "chat.completion.chunk"}
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if call:
            deltas.append({"tool_calls": [{"index": 0, **call[0]}]})
        else:
            deltas += [{"content": piece} for piece in _pieces(text)]
        events = [{**chunk, "choices": [{"index": 0, "delta": d}]} for d in deltas]
        events.append({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**chunk, "choices": [], "usage": usage})
        lines = [f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"]
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content="".join(lines).encode()
        )

    # ------------------------------------------------------------------ Anthropic
    def anthropic(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        text, tool = self._answer(body)
        block: dict[str, Any] = (
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": tool,
                "input": self.tool_args.get(tool, {}),
            }
            if tool
            else {"type": "text", "text": text}
        )
        stop = "tool_use" if tool else "end_turn"
        message = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "stop_sequence": None,
        }
        if not body.get("stream"):
            usage = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
            full = {**message, "content": [block], "stop_reason": stop, "usage": usage}
            return httpx2.Response(200, json=full)
        start = {"input_tokens": self.input_tokens, "output_tokens": 1}
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"message": {**message, "content": [], "usage": start}}),
        ]
        if tool:
            events += [
                ("content_block_start", {"index": 0, "content_block": {**block, "input": {}}}),
                (
                    "content_block_delta",
                    {
                        "index": 0,
                        "delta": {
                            "type": "input_json_delta",
                            "partial_json": json.dumps(block["input"]),
                        },
                    },
                ),
            ]
        else:
            events.append(
                ("content_block_start", {"index": 0, "content_block": {**block, "text": ""}})
            )
            events += [
                ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": p}})
                for p in _pieces(text)
            ]
        events += [
            ("content_block_stop", {"index": 0}),
            (
                "message_delta",
                {
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    # cumulative, as the Messages API reports them at the end of a stream
                    "usage": {
                        "input_tokens": self.input_tokens,
                        "output_tokens": self.output_tokens,
                    },
                },
            ),
            ("message_stop", {}),
        ]
        lines = [
            f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"
            for name, data in events
        ]
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content="".join(lines).encode()
        )


def _pieces(text: str) -> list[str]:
    """The text in stream deltas of one word each (spaces kept)."""
    words = text.split(" ")
    return [w if i == len(words) - 1 else w + " " for i, w in enumerate(words)]


@pytest.fixture
def openai_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAPI]:
    """The fake OpenAI API behind every ``httpx`` client (respx), with a dummy key set."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")
    api = FakeAPI()
    with respx.mock(assert_all_called=False) as router:
        router.post(OPENAI_URL).mock(side_effect=api.openai)
        yield api


@pytest.fixture
def anthropic_api(monkeypatch: pytest.MonkeyPatch) -> FakeAPI:
    """The fake Anthropic API behind every ``ChatAnthropic`` built, with a dummy key set."""
    import langchain_anthropic.chat_models as module

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-key")
    api = FakeAPI(input_tokens=900, output_tokens=200)
    transport = httpx2.MockTransport(api.anthropic)

    def sync_client(*, anthropic_proxy: Any = None, **kwargs: Any) -> httpx2.Client:
        return anthropic.DefaultHttpxClient(transport=transport, **kwargs)

    def async_client(*, anthropic_proxy: Any = None, **kwargs: Any) -> httpx2.AsyncClient:
        return anthropic.DefaultAsyncHttpxClient(transport=transport, **kwargs)

    monkeypatch.setattr(module, "_get_default_httpx_client", sync_client)
    monkeypatch.setattr(module, "_get_default_async_httpx_client", async_client)
    return api
