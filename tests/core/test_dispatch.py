from __future__ import annotations

import asyncio

import pytest

from mixllm_core import AllCandidatesFailedError, Dispatcher, EmptyPoolError, LLMSpec, MixLLMRouter
from mixllm_core.testing import FakeClock, HashingEncoder


def _router() -> MixLLMRouter:
    specs = [LLMSpec("cheap", 0.1, 0.1), LLMSpec("mid", 1.0, 1.0), LLMSpec("pricey", 10.0, 30.0)]
    return MixLLMRouter(specs, encoder=HashingEncoder(), seed=0)


def test_chosen_child_is_called_and_failures_fall_back() -> None:
    router = _router()
    calls: list[str] = []

    def invoke(name: str, decision) -> str:
        calls.append(name)
        if name == "pricey":
            raise TimeoutError("child timed out")
        return f"answer from {name}"

    done = Dispatcher(router).call("hello", invoke, lam=1000)
    assert calls[0] == "pricey" and done.decision.llm == calls[-1] != "pricey"
    assert done.value == f"answer from {calls[-1]}"
    assert [a.error != "" for a in done.attempts] == [True, False]
    errors = [o for o in router.log.rows()["outcomes"] if o["error"]]
    assert len(errors) == 1 and "TimeoutError" in errors[0]["error"]
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
        Dispatcher(router, max_attempts=2).call("q", invoke)
    assert len(tried) == 2 == len(info.value.attempts) and len(set(tried)) == 2


def test_stream_falls_back_before_first_chunk_and_reports_done() -> None:
    router = _router()
    results = []

    def open_stream(name: str, decision):
        if name == "pricey":
            raise ConnectionError("refused")
        yield from ["a", "b"]

    chunks = list(Dispatcher(router).stream("q", open_stream, lam=1000, on_done=results.append))
    assert [c for _, c in chunks] == ["a", "b"]
    assert results[0].decision.llm != "pricey" and len(results[0].attempts) == 2


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


def test_price_call_prefers_reported_usage_and_prices_it() -> None:
    from mixllm_core import price_call

    router = _router()
    reported = price_call(router, "mid", "prompt", "answer", (1000, 500))
    assert (reported.input_tokens, reported.output_tokens, reported.estimated) == (1000, 500, False)
    assert reported.cost == pytest.approx((1000 * 1.0 + 500 * 1.0) / 1e6)
    estimated = price_call(router, "mid", "x" * 400, None, None)
    assert (estimated.input_tokens, estimated.output_tokens, estimated.estimated) == (100, 0, True)
    assert price_call(router, "gone", "p", "a", None).cost is None
