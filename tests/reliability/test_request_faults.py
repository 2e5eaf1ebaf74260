"""The request path under faults: children that hang, fail, rate-limit, answer junk or report
junk usage, callers that give up, and full outages. Both adapters and the core dispatcher."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from llama_index.core.base.llms.types import ChatMessage, CompletionResponse
from pydantic import Field

from mixllm_core import AllCandidatesFailedError, ConfigError, Dispatcher, LLMSpec, MixLLMRouter
from mixllm_core.dispatch.retry import ErrorKind, RetryPolicy, classify_error, retry_after_s
from mixllm_core.dispatch.validate import non_empty
from mixllm_core.errors import AllCoolingDownError
from mixllm_core.testing import FakeClock, HashingEncoder
from mixllm_langchain import MixLLMChat
from mixllm_langchain.testing import ScriptedChatModel
from mixllm_llamaindex import MixLLM
from mixllm_llamaindex.testing import ScriptedLLM

Q = "What is the capital of France?"
PRICES = {"cheap": (0.1, 0.4), "pricey": (5.0, 15.0)}
NO_RETRY = RetryPolicy(retries_per_child=0)


@pytest.fixture(autouse=True, scope="module")
def _warm() -> None:
    """Routing imports scikit-learn on first use: done once here, not inside a timed call."""
    _router().route("warm up")


# ---------------------------------------------------------------------- fault-injecting children
class HangingChat(ScriptedChatModel):
    """Hangs (until ``release`` is set, at most ``hang_s``) before answering or, with
    ``after_first``, after its first stream chunk."""

    hang_s: float = 5.0
    after_first: bool = False
    release: Any = Field(default_factory=threading.Event, exclude=True)

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        self.release.wait(self.hang_s)
        return super()._generate(*args, **kwargs)

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        await asyncio.sleep(self.hang_s)
        return super()._generate(*args, **kwargs)

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for i, chunk in enumerate(super()._stream(*args, **kwargs)):
            if i == int(self.after_first):
                self.release.wait(self.hang_s)
            yield chunk

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        for i, chunk in enumerate(super()._stream(*args, **kwargs)):
            if i == int(self.after_first):
                await asyncio.sleep(self.hang_s)
            yield chunk


class HangingLLM(ScriptedLLM):
    """A LlamaIndex child that hangs (until ``release`` is set, at most ``hang_s``)."""

    hang_s: float = 5.0
    release: Any = Field(default_factory=threading.Event, exclude=True)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        self.release.wait(self.hang_s)
        return super().complete(prompt, formatted, **kwargs)

    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        await asyncio.sleep(self.hang_s)
        return super().complete(prompt, formatted, **kwargs)

    async def achat(self, messages: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(self.hang_s)
        return super().chat(messages, **kwargs)

    async def astream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        words = super().complete(prompt, formatted).text.split(" ")

        async def gen() -> AsyncIterator[CompletionResponse]:
            yield CompletionResponse(text=words[0], delta=words[0])
            await asyncio.sleep(self.hang_s)
            yield CompletionResponse(text=" ".join(words), delta=" " + " ".join(words[1:]))

        return gen()


class BadUsageLLM(ScriptedLLM):
    """Answers, and reports token counts that cannot be right."""

    bad: tuple[Any, Any] = (-50, 1)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        text = self._answer("complete")
        return CompletionResponse(
            text=text,
            additional_kwargs={"prompt_tokens": self.bad[0], "completion_tokens": self.bad[1]},
        )


class RateLimitError(Exception):
    """Shaped like the OpenAI SDK's: a status code and a response with headers."""

    status_code = 429

    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("Error code: 429 - Rate limit reached for requests")
        headers = {} if retry_after is None else {"retry-after": str(retry_after)}
        self.response = SimpleNamespace(status_code=429, headers=headers)


def _chat(models: dict[str, Any], **kwargs: Any) -> MixLLMChat:
    kwargs.setdefault("prices", {n: p for n, p in PRICES.items() if n in models})
    return MixLLMChat(models=models, encoder=HashingEncoder(), alpha=0.0, lam=0.0, **kwargs)


def _mix(models: dict[str, Any], **kwargs: Any) -> MixLLM:
    kwargs.setdefault("prices", {n: p for n, p in PRICES.items() if n in models})
    return MixLLM(models=models, encoder=HashingEncoder(), alpha=0.0, lam=0.0, **kwargs)


def _router(names: tuple[str, ...] = ("a", "b", "c")) -> MixLLMRouter:
    specs = [LLMSpec(n, 0.1 * (i + 1), 0.1 * (i + 1)) for i, n in enumerate(names)]
    return MixLLMRouter(specs, encoder=HashingEncoder(), seed=0)


def _no_slot_taken(router: MixLLMRouter) -> None:
    assert {n: router.tracker.in_flight(n) for n in router.llms} == dict.fromkeys(router.llms, 0)


def _every_decision_has_an_outcome(router: MixLLMRouter) -> None:
    rows = router.log.rows()
    decided = {d["decision_id"] for d in rows["decisions"]}
    recorded = [o["decision_id"] for o in rows["outcomes"]]
    assert decided == set(recorded) and len(recorded) == len(set(recorded))


# ---------------------------------------------------------------------- 1. timeouts
def _fell_back_after_a_timeout(info: dict[str, Any], elapsed: float, router: MixLLMRouter) -> None:
    """The hanging "cheap" child timed out at 0.3 s and "pricey" answered; all recorded."""
    assert info["llm"] == "pricey" and elapsed < 2.5  # not the child's 5 s
    assert [(a["llm"], a["kind"]) for a in info["attempts"]] == [
        ("cheap", "timeout"),
        ("pricey", ""),
    ]
    assert "within 0.3 s" in info["attempts"][0]["error"]
    _no_slot_taken(router)
    _every_decision_has_an_outcome(router)


@pytest.mark.parametrize("form", ["invoke", "ainvoke", "stream", "astream"])
async def test_a_hanging_langchain_child_times_out_and_the_next_child_answers(form: str) -> None:
    hanging = HangingChat(model_name="cheap")
    chat = _chat(
        {"cheap": hanging, "pricey": ScriptedChatModel(model_name="pricey")},
        timeout=0.3,
        retry_policy=NO_RETRY,
    )
    t0 = time.perf_counter()
    if form == "invoke":
        reply = chat.invoke(Q)
    elif form == "ainvoke":
        reply = await chat.ainvoke(Q)
    elif form == "stream":
        reply = _join(list(chat.stream(Q)))
    else:
        reply = _join([c async for c in chat.astream(Q)])
    elapsed = time.perf_counter() - t0
    hanging.release.set()
    _fell_back_after_a_timeout(reply.response_metadata["mixllm"], elapsed, chat.router)


def _join(chunks: list[Any]) -> Any:
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    return full


@pytest.mark.parametrize("form", ["complete", "acomplete", "achat", "chat"])
async def test_a_hanging_llamaindex_child_times_out_and_the_next_child_answers(form: str) -> None:
    hanging = HangingLLM(label="cheap")
    llm = _mix(
        {"cheap": hanging, "pricey": ScriptedLLM(label="pricey")},
        timeout=0.3,
        retry_policy=NO_RETRY,
    )
    message = [ChatMessage(role="user", content=Q)]
    t0 = time.perf_counter()
    if form == "complete":
        response = llm.complete(Q)
    elif form == "acomplete":
        response = await llm.acomplete(Q)
    elif form == "chat":
        response = llm.chat(message)
    else:
        response = await llm.achat(message)
    elapsed = time.perf_counter() - t0
    hanging.release.set()
    _fell_back_after_a_timeout(response.additional_kwargs["mixllm"], elapsed, llm.router)


async def test_a_stream_that_stalls_after_its_first_chunk_fails_at_the_chunk_timeout() -> None:
    stalling = HangingChat(model_name="cheap", reply="one two three", after_first=True)
    chat = _chat({"cheap": stalling, "pricey": ScriptedChatModel(model_name="pricey")}, timeout=0.3)
    for form in ("stream", "astream"):
        got: list[Any] = []
        with pytest.raises(AllCandidatesFailedError, match="cheap sent no next chunk within 0.3"):
            if form == "stream":
                for chunk in chat.stream(Q):
                    got.append(chunk)
            else:
                async for chunk in chat.astream(Q):
                    got.append(chunk)
        assert [c.text for c in got] == ["one "]  # delivered, then no second child spliced in
    stalling.release.set()
    llm = _mix({"cheap": HangingLLM(label="cheap", hang_s=2.0)}, timeout=0.3)
    stream = await llm.astream_complete(Q)
    with pytest.raises(AllCandidatesFailedError, match="within 0.3 s"):
        [c async for c in stream]
    for router in (chat.router, llm.router):
        _no_slot_taken(router)
        _every_decision_has_an_outcome(router)


def test_the_abandoned_workers_answer_is_discarded_and_recorded_once() -> None:
    router = _router(("a", "b"))
    release = threading.Event()
    answered: list[str] = []

    def invoke(name: str, decision: Any) -> str:
        if name == "a":
            release.wait(5)
            answered.append(name)
        return f"{name} answered"

    dispatcher = Dispatcher(router, timeout=0.2, retry_policy=NO_RETRY)
    done = dispatcher.call(Q, invoke, lam=0.0)
    release.set()
    for _ in range(100):  # the worker finishes the abandoned call in the background
        if answered:
            break
        time.sleep(0.01)
    assert answered == ["a"] and done.value == "b answered"
    _no_slot_taken(router)
    _every_decision_has_an_outcome(router)
    assert dispatcher.workers.threads <= 2


def test_timeout_is_one_setting_with_one_name_and_is_validated() -> None:
    children = {"cheap": ScriptedChatModel(model_name="cheap")}
    assert _chat(children, timeout=12.0).dispatcher.timeout == 12.0
    assert _mix({"cheap": ScriptedLLM(label="cheap")}, timeout=12.0).dispatcher.timeout == 12.0
    for bad in (0, -1.0, float("inf"), "10"):
        with pytest.raises(ConfigError, match="timeout must be a number of seconds > 0 or None"):
            Dispatcher(_router(), timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be a number of seconds > 0"):
        _mix({"cheap": ScriptedLLM(label="cheap")}, timeout=-1)


# ---------------------------------------------------------------------- 2. cancellation
class _SlowAsyncChat(ScriptedChatModel):
    """Answers a whole call after 10 s; streams one chunk at once, then one every 10 s."""

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        await asyncio.sleep(10)
        return super()._generate(*args, **kwargs)

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in super()._stream(*args, **kwargs):
            yield chunk
            await asyncio.sleep(10)


class _SlowAsyncLLM(HangingLLM):
    hang_s: float = 10.0


async def test_fifty_cancelled_calls_leave_no_slot_taken_and_an_outcome_per_decision() -> None:
    await _chat({"cheap": ScriptedChatModel(model_name="cheap")}).ainvoke("warm up")
    names = ("cheap", "pricey")
    chat = _chat({n: _SlowAsyncChat(model_name=n, reply="a b c") for n in names})
    llm = _mix({n: _SlowAsyncLLM(label=n) for n in names})
    messages = [ChatMessage(role="user", content=Q)]
    for i in range(50):
        form = i % 5
        if form == 0:  # the caller's own deadline
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(chat.ainvoke(Q), 0.05)
        elif form == 1:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(llm.achat(messages), 0.05)
        elif form == 2:  # a task cancelled, maybe while it is still being routed
            task = asyncio.create_task(chat.ainvoke(Q))
            await asyncio.sleep(0.001 * (i % 7))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        elif form == 3:  # a stream closed after its first chunk
            stream = chat.astream(Q)
            await anext(stream)
            await stream.aclose()
        else:  # a stream dropped after its first chunk, never closed
            dropped = await llm.astream_complete(Q)
            await anext(dropped)
            del dropped
    await asyncio.sleep(0.3)  # dropped streams are finalised by the loop; routing threads end
    gc.collect()
    await asyncio.sleep(0.1)
    for router in (chat.router, llm.router):
        _no_slot_taken(router)
        _every_decision_has_an_outcome(router)
        errors = {o["error"] for o in router.log.rows()["outcomes"]}
        assert errors <= {
            "CancelledError: the call was cancelled",
            "GeneratorExit: the stream was closed before it ended",
        }
    assert chat.dispatcher.cooling_down() == set() == llm.dispatcher.cooling_down()


def test_a_sync_stream_closed_or_dropped_early_releases_its_slot() -> None:
    chat = _chat({"cheap": ScriptedChatModel(model_name="cheap", reply="a b c d")})
    llm = _mix({"cheap": ScriptedLLM(label="cheap", reply="a b c d")})
    for _ in range(5):
        stream = chat.stream(Q)
        next(stream)
        stream.close()
        dropped = llm.stream_complete(Q)
        next(dropped)
        del dropped
    gc.collect()
    for router in (chat.router, llm.router):
        _no_slot_taken(router)
        _every_decision_has_an_outcome(router)


# ---------------------------------------------------------------------- 3. retries, cooldowns
class _APIConnectionError(Exception):
    pass


class _APITimeoutError(_APIConnectionError):  # as in the OpenAI SDK: a timeout is a connection
    pass


class _InternalServerError(Exception):
    status_code = 503


def _status_error(status: int, headers: dict[str, str] | None = None) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "https://api.example.com/v1/chat")
    response = httpx.Response(status, headers=headers, request=request)
    return httpx.HTTPStatusError(f"HTTP {status}", request=request, response=response)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (RateLimitError(), "rate_limit"),
        (_status_error(429), "rate_limit"),
        (RuntimeError("Rate limit exceeded for model x"), "rate_limit"),
        (TimeoutError(), "timeout"),
        (asyncio.TimeoutError(), "timeout"),
        (httpx.ReadTimeout("read timed out"), "timeout"),
        (_APITimeoutError("Request timed out."), "timeout"),
        (_status_error(408), "timeout"),
        (ConnectionResetError(), "connection"),
        (httpx.ConnectError("connection refused"), "connection"),
        (_APIConnectionError("Connection error."), "connection"),
        (_status_error(503), "server"),
        (_InternalServerError("overloaded"), "server"),
        (_status_error(400), "hard"),
        (_status_error(401), "hard"),
        (ValueError("context length exceeded"), "hard"),
        (KeyError("choices"), "hard"),
    ],
)
def test_errors_are_classified_by_status_class_and_text(exc: BaseException, kind: str) -> None:
    assert classify_error(exc) is ErrorKind(kind)


def test_a_wrapped_error_is_classified_by_its_cause() -> None:
    try:
        try:
            raise _status_error(502)
        except httpx.HTTPStatusError as inner:
            raise RuntimeError("the provider failed") from inner
    except RuntimeError as outer:
        assert classify_error(outer) is ErrorKind.SERVER


def test_retry_after_is_read_from_attributes_and_headers() -> None:
    assert retry_after_s(RateLimitError(7)) == 7.0
    assert retry_after_s(_status_error(429, {"Retry-After": "2.5"})) == 2.5
    assert retry_after_s(_status_error(429, {"retry-after-ms": "1500"})) == 1.5
    dated = _status_error(429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after_s(dated) == 0.0  # a date in the past: no wait
    assert retry_after_s(_with_attr(3)) == 3.0
    for junk in ("soon", "nan", "-1x"):
        assert retry_after_s(_status_error(429, {"retry-after": junk})) is None
    assert retry_after_s(RuntimeError("down")) is None


def _with_attr(seconds: float) -> Exception:
    exc = RuntimeError("slow down")
    exc.retry_after = seconds  # type: ignore[attr-defined]
    return exc


def test_the_same_child_is_retried_with_seeded_jittered_exponential_backoff() -> None:
    router = _router()
    failures = iter([_InternalServerError("503"), _status_error(502), httpx.ConnectError("x")])
    calls: list[str] = []

    def invoke(name: str, decision: Any) -> str:
        calls.append(name)
        error = next(failures, None)
        if error is not None:
            raise error
        return "ok"

    policy = RetryPolicy(retries_per_child=3, backoff_s=0.1, max_backoff_s=0.3)
    waits: list[float] = []
    dispatcher = Dispatcher(router, retry_policy=policy, sleep=waits.append, seed=7)
    done = dispatcher.call(Q, invoke, pin="a")
    assert calls == ["a"] * 4 and done.value == "ok"
    expected_rng = random.Random(7)
    assert waits == [policy.backoff(i, expected_rng) for i in range(3)]
    for i, wait in enumerate(waits):  # the upper half of 0.1 × 2^i, capped at 0.3
        cap = min(0.3, 0.1 * 2**i)
        assert cap / 2 <= wait <= cap
    assert [a.kind for a in done.attempts] == ["server", "server", "connection", ""]


def test_hard_errors_are_not_retried_on_the_same_child() -> None:
    router = _router()
    calls: list[str] = []

    def invoke(name: str, decision: Any) -> str:
        calls.append(name)
        raise PermissionError("401 invalid api key")

    with pytest.raises(AllCandidatesFailedError):
        Dispatcher(router, sleep=lambda s: None).call(Q, invoke)
    assert len(calls) == 3 == len(set(calls))  # each child once: max_retries=2 fallbacks


def test_a_rate_limited_child_cools_down_for_its_retry_after_and_the_call_falls_back() -> None:
    clock = FakeClock()
    router = _router(("a", "b"))
    waits: list[float] = []
    limited = {"a": 3.0}

    def invoke(name: str, decision: Any) -> str:
        if name in limited:
            raise RateLimitError(limited[name])
        return f"{name} answered"

    dispatcher = Dispatcher(router, clock=clock, sleep=waits.append)
    done = dispatcher.call(Q, invoke, lam=0.0)
    assert [a.llm for a in done.attempts] == ["a", "b"] and waits == []  # no wait: b was free
    assert done.attempts[0].kind == "rate_limit"
    assert dispatcher.health.remaining("a") == pytest.approx(3.0)
    assert dispatcher.call(Q, invoke, lam=0.0).attempts[0].llm == "b"  # a is skipped

    # pinned (nothing else allowed): the call waits out the Retry-After, then retries once
    del limited["a"]
    outcomes = iter([RateLimitError(2.0)])

    def once_limited(name: str, decision: Any) -> str:
        error = next(outcomes, None)
        if error is not None:
            raise error
        return "a answered"

    clock.advance(5)
    done = dispatcher.call(Q, once_limited, pin="a")
    assert done.value == "a answered" and waits == [pytest.approx(2.0)]

    # a Retry-After longer than max_wait_s is not waited for
    def long_limit(name: str, decision: Any) -> str:
        raise RateLimitError(60.0)

    with pytest.raises(AllCandidatesFailedError, match="Rate limit"):
        dispatcher.call(Q, long_limit, pin="a")
    assert len(waits) == 1 and dispatcher.health.remaining("a") == pytest.approx(60.0)


def test_cooldowns_follow_the_error_class() -> None:
    clock = FakeClock()
    policy = RetryPolicy(failure_threshold=2, cooldown_s=10.0, rate_limit_cooldown_s=4.0)
    dispatcher = Dispatcher(_router(), retry_policy=policy, clock=clock)
    health = dispatcher.health
    assert health.failed("a", ErrorKind.RATE_LIMIT) == 4.0  # at once, no Retry-After: default
    assert health.failed("b", ErrorKind.SERVER) == 0.0  # one server error: no cooldown yet
    assert health.failed("b", ErrorKind.SERVER) == 10.0  # failure_threshold in a row
    health.failed("c", ErrorKind.HARD)
    assert health.failed("c", ErrorKind.HARD) == 40.0  # repeated hard errors: 4 × cooldown_s
    clock.advance(11)
    assert dispatcher.cooling_down() == {"c"}
    assert health.failed("b", ErrorKind.TIMEOUT) == 10.0  # a failed probe: straight back
    with pytest.raises(ConfigError, match="retries_per_child must be an int >= 0, got -1"):
        RetryPolicy(retries_per_child=-1)
    with pytest.raises(ConfigError, match=r"max_backoff_s must be >= backoff_s \(2.0\), got 1.0"):
        RetryPolicy(backoff_s=2.0, max_backoff_s=1.0)
    with pytest.raises(ConfigError, match="retry_on must be a set of ErrorKind values"):
        RetryPolicy(retry_on={"timeout"})  # type: ignore[arg-type]


def test_a_child_that_fails_now_and_then_keeps_its_traffic() -> None:
    health = Dispatcher(_router()).health
    for _ in range(7):
        health.succeeded("a")
    assert [health.failed("a", ErrorKind.CONNECTION) for _ in range(4)] == [0.0] * 4  # 4 of 10
    assert health.failed("a", ErrorKind.CONNECTION) == 30.0  # 5 of its last 10: it stopped
    assert [health.failed("b", ErrorKind.SERVER) for _ in range(3)] == [0.0, 0.0, 30.0]


def test_a_call_that_failed_may_try_one_child_cooling_down_after_transient_errors() -> None:
    clock = FakeClock()
    router = _router()
    calls: list[str] = []

    def invoke(name: str, decision: Any) -> str:
        calls.append(name)
        if name == "a":
            raise ConnectionResetError("reset by peer")
        return f"{name} answered"

    dispatcher = Dispatcher(router, clock=clock, sleep=lambda s: None)
    for _ in range(3):
        dispatcher.health.failed("b", ErrorKind.SERVER)
    dispatcher.health.failed("c", ErrorKind.RATE_LIMIT, 20.0)
    done = dispatcher.call(Q, invoke, lam=0.0)
    assert calls == ["a", "a", "b"] and done.value == "b answered"  # b: 503s, not a rate limit

    calls.clear()
    for _ in range(3):
        dispatcher.health.failed("b", ErrorKind.HARD)
    with pytest.raises(AllCoolingDownError) as info:
        dispatcher.call(Q, invoke, lam=0.0)
    assert calls == ["a", "a"] and [a.llm for a in info.value.attempts] == ["a", "a"]
    assert info.value.retry_after_s == pytest.approx(20.0)  # c's Retry-After
    _no_slot_taken(router)
    _every_decision_has_an_outcome(router)


def test_a_full_outage_costs_at_most_one_child_call_per_user_call_once_all_cool_down() -> None:
    clock = FakeClock()
    router = _router()
    calls: list[str] = []
    down = True

    def invoke(name: str, decision: Any) -> str:
        calls.append(name)
        if down:
            raise httpx.ConnectError("connection refused")
        return f"{name} is back"

    dispatcher = Dispatcher(router, clock=clock, sleep=clock.advance, seed=0)
    per_call: list[int] = []
    errors: list[AllCandidatesFailedError] = []
    for _ in range(200):
        before = len(calls)
        with pytest.raises(AllCandidatesFailedError) as info:
            dispatcher.call(Q, invoke)
        per_call.append(len(calls) - before)
        errors.append(info.value)
    # first call: each child twice (one retry); second: each once more (the 3rd failure in a
    # row cools it down), the last one retried as nothing else is left; then every child
    # cools down and no call reaches a child
    assert per_call[:2] == [6, 4] and set(per_call[2:]) == {0} and len(calls) == 10
    assert all(isinstance(e, AllCoolingDownError) for e in errors[2:])
    assert errors[-1].retry_after_s == pytest.approx(30.0, abs=2.0)
    assert "cooling down" in str(errors[-1]) and errors[-1].attempts == []

    clock.advance(31)  # cooldowns over: each next call probes one child, and only one
    probes = []
    for _ in range(4):
        before = len(calls)
        with pytest.raises(AllCoolingDownError):
            dispatcher.call(Q, invoke)
        probes.append(len(calls) - before)
    assert probes == [1, 1, 1, 0] and sorted(calls[-3:]) == ["a", "b", "c"]

    clock.advance(31)
    down = False
    before = len(calls)
    assert dispatcher.call(Q, invoke).value.endswith("is back") and len(calls) == before + 1
    _no_slot_taken(router)
    _every_decision_has_an_outcome(router)


async def test_concurrent_calls_send_one_probe_when_a_cooldown_ends() -> None:
    clock = FakeClock()
    router = _router()
    calls: list[str] = []

    async def invoke(name: str, decision: Any) -> str:
        calls.append(name)
        await asyncio.sleep(0.01)
        raise ConnectionError("refused")

    dispatcher = Dispatcher(router, clock=clock, retry_policy=NO_RETRY, failure_threshold=1)
    with pytest.raises(AllCandidatesFailedError):
        await dispatcher.acall(Q, invoke)
    assert dispatcher.cooling_down() == {"a", "b", "c"} and len(calls) == 3
    clock.advance(31)
    results = await asyncio.gather(
        *(dispatcher.acall(Q, invoke) for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, AllCoolingDownError) for r in results)
    assert len(calls) == 4  # one probe for twenty calls
    _no_slot_taken(router)
    _every_decision_has_an_outcome(router)


def test_both_adapters_take_the_policy_and_its_shorthands_with_the_same_names() -> None:
    policy = RetryPolicy(retries_per_child=2, rate_limit_cooldown_s=9.0)
    chat = _chat({"cheap": ScriptedChatModel(model_name="cheap")}, retry_policy=policy)
    llm = _mix({"cheap": ScriptedLLM(label="cheap")}, retry_policy=policy, cooldown_s=7.0)
    assert chat.dispatcher.policy == policy
    assert llm.dispatcher.policy.cooldown_s == 7.0 and llm.dispatcher.policy.retries_per_child == 2
    assert chat.retry_policy is policy and llm.retry_policy is policy
    for name in ("retry_policy", "failure_threshold", "cooldown_s", "timeout", "validator"):
        assert name in MixLLMChat.model_fields and name in MixLLM.model_fields, name


def test_an_adapter_retries_a_rate_limited_child_then_falls_back() -> None:
    class Limited(ScriptedChatModel):
        def _generate(self, messages: Any, *args: Any, **kwargs: Any) -> ChatResult:
            self.calls.append(list(messages))
            raise RateLimitError(5.0)  # long enough to outlast the next decision under load

    limited = Limited(model_name="cheap")
    chat = _chat({"cheap": limited, "pricey": ScriptedChatModel(model_name="pricey")})
    reply = chat.invoke(Q)
    attempts = reply.response_metadata["mixllm"]["attempts"]
    # rate-limited: cheap cools down for its Retry-After, pricey is free: no wait, no retry
    assert [(a["llm"], a["kind"]) for a in attempts] == [("cheap", "rate_limit"), ("pricey", "")]
    assert len(limited.calls) == 1


# ---------------------------------------------------------------------- 4. misbehaving children
@pytest.mark.parametrize("bad", [(-50, 1), (float("nan"), 3), (2.5, 3), ("7", "3")])
def test_bad_usage_numbers_are_estimated_and_logged_not_the_users_failure(
    bad: tuple[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    llm = _mix({"cheap": BadUsageLLM(label="cheap", bad=bad)})
    with caplog.at_level(logging.WARNING, logger="mixllm_core.dispatch.run"):
        response = llm.complete(Q)
    info = response.additional_kwargs["mixllm"]
    assert response.text == "cheap: an answer" and info["usage_estimated"] is True
    assert info["input_tokens"] > 0 and info["output_tokens"] > 0 and info["cost"] > 0
    assert f"cheap reported unusable token counts {bad!r}" in caplog.text
    [row] = llm.router.log.rows()["outcomes"]
    assert row["error"] is None and row["output_tokens"] == info["output_tokens"]


@pytest.mark.parametrize("bad", [-50, float("nan")])
async def test_a_langchain_childs_bad_usage_is_estimated_too(bad: float) -> None:
    class BadUsage(ScriptedChatModel):
        def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
            message = super()._generate(*args, **kwargs).generations[0].message
            usage = {"input_tokens": bad, "output_tokens": 2, "total_tokens": 2}
            reply = AIMessage(content=message.content)
            reply.usage_metadata = usage  # type: ignore[assignment] - what a broken SDK sends
            return ChatResult(generations=[ChatGeneration(message=reply)])

    chat = _chat({"cheap": BadUsage(model_name="cheap")})
    for meta in (chat.invoke(Q).response_metadata, (await chat.ainvoke(Q)).response_metadata):
        info = meta["mixllm"]
        assert info["usage_estimated"] is True and info["input_tokens"] > 0 and info["cost"] > 0
    _every_decision_has_an_outcome(chat.router)


def test_a_rejected_answer_is_the_childs_failure_and_the_next_child_answers() -> None:
    chat = _chat(
        {
            "cheap": ScriptedChatModel(model_name="cheap", reply="  "),
            "pricey": ScriptedChatModel(model_name="pricey", reply="Paris."),
        },
        validator=non_empty,
    )
    reply = chat.invoke(Q)
    attempts = reply.response_metadata["mixllm"]["attempts"]
    assert reply.text == "Paris." and attempts[0]["kind"] == "invalid"
    assert attempts[0]["error"] == "rejected by the validator: empty answer"
    rejected = next(o for o in chat.router.log.rows()["outcomes"] if o["error"])
    assert rejected["output_tokens"] == 1 and rejected["cost"] > 0  # the junk was paid for

    def mentions_paris(reply: Any) -> str | None:
        return None if "Paris" in (reply.text or "") else "does not name the capital"

    llm = _mix(
        {
            "cheap": ScriptedLLM(label="cheap", reply="Lyon."),
            "pricey": ScriptedLLM(label="pricey", reply="Paris."),
        },
        validator=mentions_paris,
    )
    response = llm.complete(Q)
    assert response.text == "pricey: Paris."
    errors = [a["error"] for a in response.additional_kwargs["mixllm"]["attempts"]]
    assert errors == ["rejected by the validator: does not name the capital", ""]


def test_a_stream_rejected_at_its_end_raises_and_a_raising_validator_rejects() -> None:
    chat = _chat({"cheap": ScriptedChatModel(model_name="cheap", reply="")}, validator=non_empty)
    with pytest.raises(AllCandidatesFailedError, match="empty answer"):
        list(chat.stream(Q))

    def broken(reply: Any) -> None:
        raise KeyError("oops")

    llm = _mix({"cheap": ScriptedLLM(label="cheap")}, validator=broken)
    with pytest.raises(AllCandidatesFailedError, match="the validator raised KeyError"):
        llm.complete(Q)
    for router in (chat.router, llm.router):
        _no_slot_taken(router)
        _every_decision_has_an_outcome(router)


def test_an_answer_that_only_calls_tools_is_not_empty() -> None:
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    chat = _chat({"cheap": ScriptedChatModel(model_name="cheap")}, validator=non_empty)
    reply = chat.bind_tools([multiply]).invoke("What is 6 times 7?")
    assert reply.text == "" and reply.tool_calls[0]["args"] == {"a": 6, "b": 7}
    assert len(reply.response_metadata["mixllm"]["attempts"]) == 1


# ---------------------------------------------------------------------- 5. bounded memory
def test_event_loops_are_not_kept_alive_by_the_micro_batchers() -> None:
    chat = _chat({"cheap": ScriptedChatModel(model_name="cheap")})
    llm = _mix({"cheap": ScriptedLLM(label="cheap")})
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []
    for _ in range(150):  # what asyncio.run does, with a handle on each loop it makes
        for call in (chat.ainvoke, llm.acomplete):
            loop = asyncio.new_event_loop()
            loop.run_until_complete(call(Q))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            loops.append(weakref.ref(loop))
            del loop
    gc.collect()
    alive = sum(ref() is not None for ref in loops)
    assert alive <= 2  # at most the last loop of each adapter; was one per run (300)
    assert len(chat.dispatcher._batchers) <= 1 and len(llm.dispatcher._batchers) <= 1
