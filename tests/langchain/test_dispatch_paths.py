"""MixLLMChat through the core dispatcher: outcomes recorded there, secrets redacted there, and
concurrent calls that do not change each other's choices."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from langchain_core.messages import BaseMessage
from langchain_helpers import make_chat

from mixllm_core import AllCandidatesFailedError, StaticEncoder
from mixllm_langchain import MixLLMChat, MixLLMFeedbackHandler
from mixllm_langchain.testing import ScriptedChatModel

QUERY = "Explain the derivative of x squared"
SECRET = "sk-ant-api03-not-a-real-key-0123456789abcdef"


def _join(chunks: list[Any]) -> Any:
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    return full


def _outcomes(chat: MixLLMChat) -> dict[str, dict[str, Any]]:
    rows = chat.router.log.rows()["outcomes"]
    by_id = {o["decision_id"]: o for o in rows}
    assert len(by_id) == len(rows)  # one outcome per attempt, never two
    return by_id


# ---------------------------------------------------------------------- outcomes
async def test_every_call_form_records_one_outcome_with_its_usage() -> None:
    chat = make_chat(lam=100.0)
    replies: list[BaseMessage] = [
        chat.invoke(QUERY),
        await chat.ainvoke(QUERY),
        _join(list(chat.stream(QUERY))),
        _join([c async for c in chat.astream(QUERY)]),
    ]
    outcomes = _outcomes(chat)
    assert len(outcomes) == 4
    for reply in replies:
        meta = reply.response_metadata["mixllm"]
        row = outcomes[meta["decision_id"]]
        assert (
            (row["input_tokens"], row["output_tokens"])
            == (6, 7)
            == (
                reply.usage_metadata["input_tokens"],
                reply.usage_metadata["output_tokens"],
            )
        )
        assert row["cost"] == meta["cost"] == pytest.approx((6 * 5.0 + 7 * 15.0) / 1e6)
        assert row["latency_s"] == meta["latency_s"] > 0 and row["error"] is None


def test_the_handler_maps_runs_but_records_nothing() -> None:
    chat = make_chat(lam=0.0)
    other = make_chat(lam=0.0)  # a handler on another chat's router sees this chat's runs
    handler = MixLLMFeedbackHandler(other.router)
    chat.invoke(QUERY, config={"callbacks": [handler]})
    assert len(_outcomes(chat)) == 1 and _outcomes(other) == {}


def test_a_stream_closed_early_is_recorded_with_what_it_used() -> None:
    chat = make_chat(
        lam=0.0,
        models={
            n: ScriptedChatModel(model_name=n, reply="one two three") for n in ("cheap", "pricey")
        },
    )
    stream = chat.stream(QUERY)
    first = next(stream)
    stream.close()
    [row] = _outcomes(chat).values()
    assert "closed before it ended" in row["error"] and row["output_tokens"] == 1
    assert first.text == "one "
    assert chat.router.tracker.in_flight("cheap") == 0


async def test_a_cancelled_call_ends_its_tracking_and_is_recorded() -> None:
    started = asyncio.Event()

    class Slow(ScriptedChatModel):
        async def _agenerate(self, *args: Any, **kwargs: Any) -> Any:
            started.set()
            await asyncio.sleep(10)

    chat = make_chat(lam=0.0, models={n: Slow(model_name=n) for n in ("cheap", "pricey")})
    task = asyncio.create_task(chat.ainvoke(QUERY))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [row] = _outcomes(chat).values()
    assert row["error"] == "CancelledError: the call was cancelled"
    assert chat.router.tracker.in_flight("cheap") == 0
    assert chat.dispatcher.cooling_down() == set()  # not held against the child


# ---------------------------------------------------------------------- secrets
def _leaky(**kwargs: Any) -> dict[str, ScriptedChatModel]:
    url = f"https://api.example.com/v1/chat?api_key={SECRET}"
    return {
        "cheap": ScriptedChatModel(model_name="cheap", **kwargs),
        "pricey": ScriptedChatModel(
            model_name="pricey", fail_first=10**6, error=f"401 Unauthorized for url {url}"
        ),
    }


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_a_childs_key_is_redacted_in_metadata_and_the_log(mode: str) -> None:
    chat = make_chat(lam=100.0, models=_leaky())
    reply = chat.invoke(QUERY) if mode == "invoke" else _join(list(chat.stream(QUERY)))
    [failed, answered] = reply.response_metadata["mixllm"]["attempts"]
    assert failed["llm"] == "pricey" and "api_key=[REDACTED]" in failed["error"]
    assert answered["error"] == "" and SECRET not in repr(reply)
    errors = [o["error"] for o in _outcomes(chat).values() if o["error"]]
    assert len(errors) == 1 and "api_key=[REDACTED]" in errors[0] and SECRET not in errors[0]


async def test_a_childs_key_is_redacted_in_the_raised_error() -> None:
    chat = make_chat(models=_leaky(), max_retries=0, lam=100.0)
    for call in (lambda: chat.ainvoke(QUERY), lambda: _drain(chat.astream(QUERY))):
        with pytest.raises(AllCandidatesFailedError) as info:
            await call()
        shown = "".join(traceback.format_exception(info.value))
        assert SECRET not in shown and "api_key=[REDACTED]" in str(info.value)
        assert "ScriptedChatModel" not in shown or "_respond" in shown  # the child's frames stay
        assert info.value.__cause__ is not None and info.value.__cause__.exc_type is RuntimeError


async def _drain(stream: Any) -> list[Any]:
    return [c async for c in stream]


def test_repr_does_not_show_the_children() -> None:
    class KeyedChat(ScriptedChatModel):
        api_key: str = ""

    chat = make_chat(
        models={n: KeyedChat(model_name=n, api_key=SECRET) for n in ("cheap", "pricey")}
    )
    assert SECRET in repr(chat.models["cheap"])  # the child's own repr would leak it
    assert SECRET not in repr(chat) and SECRET not in str(chat)


# ---------------------------------------------------------------------- concurrency
class _Spy:
    """The default encoder, recording the size of every batch it embeds."""

    def __init__(self) -> None:
        self.inner = StaticEncoder()
        self.batches: list[int] = []

    @property
    def dim(self) -> int:
        return int(self.inner.dim)

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        self.batches.append(len(texts))
        return self.inner.encode(texts, show_progress=show_progress)

    def get_config(self) -> dict[str, Any]:
        return self.inner.get_config()


README_PRICES = {"small": (0.15, 0.6), "large": (2.5, 10.0)}


def _readme_chat(encoder: Any = None) -> MixLLMChat:
    """The README's cold-start chat (lam=2.0, default encoder) over scripted children."""
    children = {n: ScriptedChatModel(model_name=n) for n in README_PRICES}
    return MixLLMChat(models=children, prices=README_PRICES, lam=2.0, encoder=encoder)


async def test_concurrent_calls_do_not_change_each_others_choices() -> None:
    # A short question goes to "small" by a narrow margin (normalised cost outweighs the prior's
    # quality gap). A cost reference taken from the batch would be set by the long prompt's cost
    # and shrink every normalised cost, sending the question to "large" when the two share a
    # micro-batch: the choice must not depend on what else is in flight.
    question = "What is 2 + 2?"
    long_prompt = "Summarise this report in three bullet points. " + "word " * 20_000
    alone = await _readme_chat().ainvoke(question)
    assert alone.response_metadata["mixllm"]["llm"] == "small"

    spy = _Spy()
    chat = _readme_chat(encoder=spy)
    together, _ = await asyncio.gather(chat.ainvoke(question), chat.ainvoke(long_prompt))
    assert spy.batches == [2]  # both were routed in one micro-batch
    assert together.response_metadata["mixllm"]["llm"] == "small"
    scores = {c["llm"]: c["score"] for c in together.response_metadata["mixllm"]["candidates"]}
    expected = {c["llm"]: c["score"] for c in alone.response_metadata["mixllm"]["candidates"]}
    assert scores == pytest.approx(expected, abs=1e-9)
