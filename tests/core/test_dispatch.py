from __future__ import annotations

import asyncio

import pytest

from mixllm_core import AllCandidatesFailedError, ConfigError, Dispatcher, LLMSpec, MixLLMRouter
from mixllm_core.errors import EmptyPoolError
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
    from mixllm_core.dispatch import price_call

    router = _router()
    reported = price_call(router, "mid", "prompt", "answer", (1000, 500))
    assert (reported.input_tokens, reported.output_tokens, reported.estimated) == (1000, 500, False)
    assert reported.cost == pytest.approx((1000 * 1.0 + 500 * 1.0) / 1e6)
    estimated = price_call(router, "mid", "x" * 400, None, None)
    assert (estimated.input_tokens, estimated.output_tokens, estimated.estimated) == (100, 0, True)
    assert price_call(router, "gone", "p", "a", None).cost is None


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
    favourite = max(router.llms, key=lambda n: sum(router.route(q, lam=3.0).llm == n
                                                   for q in queries))
    enc.batches.clear()
    dispatcher = Dispatcher(router)

    async def main():
        return await asyncio.gather(*(
            dispatcher.acall(q, _echo, lam=3.0, exclude=[favourite] if i % 2 else [])
            for i, q in enumerate(queries)
        ))

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
