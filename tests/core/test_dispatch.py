from __future__ import annotations

import asyncio

import pytest

from mixllm_core import AllCandidatesFailedError, ConfigError, Dispatcher, LLMSpec, MixLLMRouter
from mixllm_core.dispatch import Reply
from mixllm_core.dispatch.retry import RetryPolicy
from mixllm_core.errors import EmptyPoolError
from mixllm_core.testing import FakeClock, HashingEncoder


def _router() -> MixLLMRouter:
    specs = [LLMSpec("cheap", 0.1, 0.1), LLMSpec("mid", 1.0, 1.0), LLMSpec("pricey", 10.0, 30.0)]
    return MixLLMRouter(specs, encoder=HashingEncoder(), seed=0)


def test_chosen_child_is_called_retried_once_then_falls_back() -> None:
    router = _router()
    calls: list[str] = []
    waits: list[float] = []

    def invoke(name: str, decision) -> str:
        calls.append(name)
        if name == "pricey":
            raise TimeoutError("child timed out")
        return f"answer from {name}"

    done = Dispatcher(router, sleep=waits.append, seed=0).call("hello", invoke, lam=1000)
    assert calls[:2] == ["pricey", "pricey"] and done.decision.llm == calls[-1] != "pricey"
    assert done.value == f"answer from {calls[-1]}" and len(calls) == 3
    assert [a.kind for a in done.attempts] == ["timeout", "timeout", ""]
    assert len(waits) == 1 and 0.25 <= waits[0] <= 0.5  # the jittered first backoff
    errors = [o for o in router.log.rows()["outcomes"] if o["error"]]
    assert len(errors) == 2 and all("TimeoutError" in e["error"] for e in errors)
    assert router.tracker.in_flight("pricey") == 0


def test_failing_child_cools_down_and_pins_do_not_fall_back() -> None:
    clock = FakeClock()
    router = _router()
    dispatcher = Dispatcher(router, failure_threshold=2, cooldown_s=60, clock=clock)

    def invoke(name: str, decision) -> str:
        if name == "pricey":
            raise RuntimeError("down")
        return name

    for _ in range(2):
        dispatcher.call("q", invoke, lam=1000)
    assert dispatcher.cooling_down() == {"pricey"}
    first = dispatcher.call("q", invoke, lam=1000)
    assert [a.llm for a in first.attempts] != ["pricey"] and first.attempts[0].llm != "pricey"
    clock.advance(61)
    assert dispatcher.cooling_down() == {"pricey"}  # hard errors: 4 × cooldown_s
    clock.advance(180)
    assert dispatcher.cooling_down() == set()
    with pytest.raises(AllCandidatesFailedError, match="pricey: RuntimeError: down"):
        dispatcher.call("q", invoke, pin="pricey")
    with pytest.raises(EmptyPoolError, match="No LLM left"):
        dispatcher.call("q", invoke, exclude=["cheap", "mid", "pricey"])


def test_bounded_attempts() -> None:
    router = _router()
    tried: list[str] = []

    def invoke(name: str, decision) -> str:
        tried.append(name)
        raise ValueError("bad")

    with pytest.raises(AllCandidatesFailedError) as info:
        Dispatcher(router, max_retries=1).call("q", invoke)
    assert len(tried) == 2 == len(info.value.attempts) and len(set(tried)) == 2


def test_max_attempts_is_a_deprecated_spelling_of_max_retries() -> None:
    with pytest.warns(DeprecationWarning, match="use max_retries=n - 1"):
        dispatcher = Dispatcher(_router(), max_attempts=2)
    assert dispatcher.max_retries == 1
    with pytest.raises(ConfigError, match="max_retries must be an int >= 0, got -1"):
        Dispatcher(_router(), max_retries=-1)
    with pytest.raises(ConfigError, match="failure_threshold must be an int >= 1, got 0"):
        Dispatcher(_router(), failure_threshold=0)


def test_stream_falls_back_before_first_chunk_and_reports_done() -> None:
    router = _router()
    results = []

    def open_stream(name: str, decision):
        if name == "pricey":
            raise ConnectionError("refused")
        yield from ["a", "b"]

    dispatcher = Dispatcher(router, sleep=lambda s: None)
    chunks = list(dispatcher.stream("q", open_stream, lam=1000, on_done=results.append))
    assert [c for _, c in chunks] == ["a", "b"]
    assert results[0].decision.llm != "pricey"
    assert [a.llm for a in results[0].attempts][:2] == ["pricey", "pricey"]  # retried once
    assert [a.kind for a in results[0].attempts] == ["connection", "connection", ""]


def test_abandoned_stream_releases_the_child() -> None:
    router = _router()

    def open_stream(name: str, decision):
        yield from range(100)

    gen = Dispatcher(router).stream("q", open_stream, lam=1000)
    decision, _ = next(gen)
    assert router.tracker.in_flight(decision.llm) == 1
    gen.close()
    assert router.tracker.in_flight(decision.llm) == 0


def test_async_call_and_stream() -> None:
    router = _router()

    async def invoke(name: str, decision) -> str:
        await asyncio.sleep(0)
        if name == "pricey":
            raise RuntimeError("x")
        return name

    async def open_stream(name: str, decision):
        for c in "xy":
            yield c

    async def main():
        done = await Dispatcher(router).acall("q", invoke, lam=1000)
        chunks = [c async for _, c in Dispatcher(router).astream("q", open_stream)]
        return done, chunks

    done, chunks = asyncio.run(main())
    assert done.value != "pricey" and chunks == ["x", "y"]


def test_async_routing_does_not_block_the_event_loop() -> None:
    import time as _time

    class SlowEncoder(HashingEncoder):
        def encode(self, texts, *, show_progress: bool = False):
            _time.sleep(0.3)  # a slow embedding (MiniLM on a long prompt)
            return super().encode(texts)

    specs = [LLMSpec("cheap", 0.1, 0.1), LLMSpec("pricey", 10.0, 30.0)]
    router = MixLLMRouter(specs, encoder=SlowEncoder())

    async def invoke(name: str, decision) -> str:
        return name

    async def main() -> int:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        await Dispatcher(router).acall("q", invoke)
        done.set()
        await task
        return ticks

    # a blocked loop would tick once; a free one ~30 times during the 0.3 s embedding
    assert asyncio.run(main()) >= 5


def test_price_call_is_a_deprecated_shim_over_llmspec_price_call() -> None:
    from mixllm_core.dispatch import price_call

    router = _router()
    with pytest.warns(DeprecationWarning, match="use LLMSpec.price_call"):
        reported = price_call(router, "mid", "prompt", "answer", (1000, 500))
    assert reported == router.specs["mid"].price_call("prompt", "answer", (1000, 500))
    with pytest.warns(DeprecationWarning):
        assert price_call(router, "gone", "p", "a", None).cost is None


# ---------------------------------------------------------------------- outcomes
def _outcomes(router: MixLLMRouter) -> list[dict]:
    return router.log.rows()["outcomes"]


def _reader(value: dict, so_far: Reply | None) -> Reply:
    """Answers as {"text": ..., "usage": (in, out)}; chunks append text and add usage."""
    text, usage = value["text"], value.get("usage")
    if so_far is None:
        return Reply(text, usage)
    if so_far.tokens is not None and usage is not None:
        usage = (so_far.tokens[0] + usage[0], so_far.tokens[1] + usage[1])
    return Reply((so_far.text or "") + text, usage or so_far.tokens)


def test_the_dispatcher_records_every_outcome_with_usage_and_cost() -> None:
    router = _router()
    dispatcher = Dispatcher(router, reader=_reader, retry_policy=RetryPolicy(retries_per_child=0))

    def invoke(name: str, decision) -> dict:
        if name == "pricey":
            raise TimeoutError("slow")
        return {"text": "an answer", "usage": (1000, 500)}

    done = dispatcher.call("q", invoke, lam=1000)
    failed, answered = _outcomes(router)
    assert failed["decision_id"] == done.attempts[0].decision_id
    assert failed["error"] == "TimeoutError: slow" and failed["cost"] is None
    assert answered["decision_id"] == done.decision.decision_id and answered["error"] is None
    spec = router.specs[done.decision.llm]
    assert answered["cost"] == pytest.approx(spec.cost(1000, 500)) == done.usage.cost
    assert (answered["input_tokens"], answered["output_tokens"]) == (1000, 500)
    assert answered["latency_s"] == done.latency_s == done.to_dict()["latency_s"]


def test_a_streams_usage_is_read_from_its_chunks() -> None:
    router = _router()
    results = []

    def open_stream(name: str, decision):
        yield {"text": "x" * 40}
        yield {"text": "y" * 40}

    pairs = Dispatcher(router, reader=_reader).stream(
        "q" * 400, open_stream, pin="mid", on_done=results.append
    )
    assert len(list(pairs)) == 2
    [done] = results
    assert (done.usage.input_tokens, done.usage.output_tokens, done.usage.estimated) == (
        100,
        20,
        True,
    )
    [row] = _outcomes(router)
    assert row["cost"] == pytest.approx(router.specs["mid"].cost(100, 20))


async def test_async_forms_record_their_outcomes_too() -> None:
    router = _router()
    dispatcher = Dispatcher(router)

    async def invoke(name: str, decision) -> str:
        return "four words of text"

    async def open_stream(name: str, decision):
        yield "two "
        yield "chunks"

    done = await dispatcher.acall("q", invoke, pin="cheap")
    chunks = [c async for _, c in dispatcher.astream("q", open_stream, pin="cheap")]
    assert chunks == ["two ", "chunks"]
    rows = _outcomes(router)
    assert [r["decision_id"] for r in rows][0] == done.decision.decision_id
    assert [r["output_tokens"] for r in rows] == [5, 3]  # estimated from the (joined) texts
    assert all(r["error"] is None for r in rows)


def test_an_interrupted_call_is_recorded_and_not_held_against_the_child() -> None:
    router = _router()
    dispatcher = Dispatcher(router, failure_threshold=1)

    def invoke(name: str, decision) -> str:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dispatcher.call("q", invoke, pin="mid")
    [row] = _outcomes(router)
    assert row["error"] == "KeyboardInterrupt: the call was interrupted"
    assert dispatcher.cooling_down() == set() and router.tracker.in_flight("mid") == 0


# ---------------------------------------------------------------------- secrets
@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (
            "GET https://x.example/v1/models?alt=json&key=AIzaSyA1234567890abcdefghijklmnopqrs",
            "AIza",
        ),
        ("POST /v1/chat?api_key=abc123secret&stream=true failed", "abc123secret"),
        ("?access_token=ya29.a0AfH6SMBxyz-secret", "ya29"),
        ("headers: {'Authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.secret'}", "eyJhbGci"),
        ("Incorrect API key provided: sk-proj-AbCdEf0123456789AbCdEf", "sk-proj"),
        ("invalid x-api-key sk-ant-api03-AbCdEf0123456789-AbCdEf", "sk-ant"),
        ("OpenAI(api_key='hunter2-long-password', model='gpt')", "hunter2"),
        ('{"error": {"message": "bad token", "token": "tok_0123456789"}}', "tok_0123"),
    ],
)
def test_redact_removes_key_like_values(text: str, secret: str) -> None:
    from mixllm_core.dispatch.redact import REDACTED, redact

    out = redact(text)
    assert secret not in out and REDACTED in out


def test_redact_keeps_ordinary_error_text() -> None:
    from mixllm_core.dispatch.redact import redact

    for text in (
        "RateLimitError: 429 Too Many Requests, retry after 20 s",
        "KeyError: 'choices'",
        "context length 8192 exceeded by 1200 tokens",
        "https://api.example.com/v1/chat/completions?model=gpt-4o",
    ):
        assert redact(text) == text


def test_secrets_in_a_childs_error_never_leave_the_dispatcher() -> None:
    import traceback

    secret = "AIzaSyA1234567890abcdefghijklmnopqrs"
    router = _router()

    def invoke(name: str, decision) -> str:
        raise PermissionError(f"403 for https://x.example/v1?key={secret}")

    with pytest.raises(AllCandidatesFailedError) as info:
        Dispatcher(router).call("q", invoke)
    shown = "".join(traceback.format_exception(info.value))
    assert secret not in shown and "key=[REDACTED]" in str(info.value)
    assert "raise PermissionError" in shown  # the child's traceback is kept, its text redacted
    assert all(secret not in a.error for a in info.value.attempts)
    assert all(secret not in o["error"] for o in _outcomes(router))


class _BatchRecordingEncoder(HashingEncoder):
    """Records the size of every encode() call; slow enough that concurrent calls queue up."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def encode(self, texts, *, show_progress: bool = False):
        import time as _time

        if any("boom" in t for t in texts):
            raise ValueError("cannot embed 'boom'")
        self.batches.append(len(texts))
        _time.sleep(0.02)
        return super().encode(texts)


def _fitted(encoder: HashingEncoder) -> tuple[MixLLMRouter, list[str]]:
    from mixllm_core.testing import make_synthetic_world

    train, test = make_synthetic_world(400, seed=0).train_test_split(seed=0)
    return MixLLMRouter(encoder=encoder, seed=0).fit(train), test.queries[:32]


async def _echo(name: str, decision) -> str:
    await asyncio.sleep(0)
    return name


def test_concurrent_async_calls_are_routed_in_micro_batches() -> None:
    enc = _BatchRecordingEncoder()
    router, queries = _fitted(enc)
    twin, _ = _fitted(HashingEncoder())
    expected = [twin.route(q, lam=3.0).llm for q in queries]
    dispatcher = Dispatcher(router)
    enc.batches.clear()

    async def main():
        return await asyncio.gather(*(dispatcher.acall(q, _echo, lam=3.0) for q in queries))

    done = asyncio.run(main())
    assert [d.value for d in done] == expected  # the same choices as routing one by one
    assert sum(enc.batches) == len(queries) and max(enc.batches) == len(queries)  # one pass
    assert len(expected) > len(set(expected)) > 1  # the batch really mixed several choices
    assert all(router.tracker.in_flight(n) == 0 for n in router.llms)


def test_micro_batches_keep_each_calls_exclusions() -> None:
    enc = _BatchRecordingEncoder()
    router, queries = _fitted(enc)
    favourite = max(
        router.llms, key=lambda n: sum(router.route(q, lam=3.0).llm == n for q in queries)
    )
    enc.batches.clear()
    dispatcher = Dispatcher(router)

    async def main():
        return await asyncio.gather(
            *(
                dispatcher.acall(q, _echo, lam=3.0, exclude=[favourite] if i % 2 else [])
                for i, q in enumerate(queries)
            )
        )

    done = asyncio.run(main())
    assert all(d.value != favourite for d in done[1::2])
    assert any(d.value == favourite for d in done[0::2])
    assert sorted(enc.batches) == [16, 16]  # two groups, one route_batch each


def test_an_error_in_a_micro_batch_reaches_only_its_call() -> None:
    enc = _BatchRecordingEncoder()
    router, queries = _fitted(enc)
    queries = [*queries[:7], "boom goes this query"]
    dispatcher = Dispatcher(router)

    async def main():
        return await asyncio.gather(
            *(dispatcher.acall(q, _echo, lam=3.0) for q in queries), return_exceptions=True
        )

    results = asyncio.run(main())
    assert isinstance(results[-1], ValueError) and "boom" in str(results[-1])
    assert all(r.value in router.llms for r in results[:-1])


def test_micro_batching_can_be_turned_off_and_is_validated() -> None:
    enc = _BatchRecordingEncoder()
    router, queries = _fitted(enc)
    enc.batches.clear()
    dispatcher = Dispatcher(router, micro_batch=False)

    async def main():
        return await asyncio.gather(*(dispatcher.acall(q, _echo) for q in queries[:8]))

    asyncio.run(main())
    assert enc.batches == [1] * 8
    with pytest.raises(ConfigError, match="micro_batch must be True or False, got 'yes'"):
        Dispatcher(router, micro_batch="yes")  # type: ignore[arg-type]


def test_a_call_cancelled_while_its_batch_routes_releases_its_child() -> None:
    enc = _BatchRecordingEncoder()
    router, queries = _fitted(enc)
    dispatcher = Dispatcher(router)

    async def main() -> None:
        tasks = [asyncio.create_task(dispatcher.acall(q, _echo)) for q in queries[:4]]
        await asyncio.sleep(0.005)  # the batch is being embedded in the worker thread
        tasks[0].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[0], asyncio.CancelledError)
        assert all(r.value in router.llms for r in results[1:])

    asyncio.run(main())
    assert all(router.tracker.in_flight(n) == 0 for n in router.llms)
