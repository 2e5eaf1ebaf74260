"""Both integrations under injected faults: what the caller sees, what the children got.

Per adapter (LangChain ``MixLLMChat``, LlamaIndex ``MixLLM``) over three offline scripted
children ``a`` < ``b`` < ``c`` by price (λ = 0, so ``a`` is the first choice), for ``--n`` sync
calls in a row and ``--n`` concurrent async calls (all started at once on one event loop, at most
``--concurrency`` in flight: more only queue on the loop, and a starved loop makes healthy
children look slow to a timeout), in each scenario:

- ``healthy``: no fault (the cost of routing itself);
- ``flaky``: ``a`` and ``b`` fail 30% of their calls (connection resets, 503s), ``c`` works;
- ``flaky_all``: all three fail 30% (the floor: a call fails when its 6 attempts all do);
- ``hang``: ``a`` never answers in time (it sleeps 10 × ``--timeout-ms``);
- ``timeout``: half of ``a``'s calls raise the child's own TimeoutError after 2 × the delay;
- ``rate_limit``: half of ``a``'s calls are 429s with ``Retry-After: 0.05``;
- ``cancel``: the caller gives up: async calls under ``asyncio.wait_for`` with a deadline drawn
  between 0 and 20 × the delay (children take 0.5–3 × the delay; some calls are cancelled while
  routed, some while the child works, some answer), sync streams closed after their first chunk;
- ``outage``: every child fails every call.

Reported per run: user calls that failed (and were cancelled by the caller), child calls made,
decisions without an outcome in the router's log, in-flight slots left taken, during the outage
the most child calls any user call made once every child was cooling down, and p50/p99 latency
of the calls that answered next to calling a healthy child directly in the same run (added ms
and the ratio). Children answer after ``--delay-ms``; the retry policy is scaled to these short
delays (printed with the results).

Usage::

    nice -n 5 python benchmarks/faults.py --n 300 --out faults.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from llama_index.core.base.llms.types import CompletionResponse
from pydantic import Field

from mixllm_core.dispatch.retry import RetryPolicy
from mixllm_core.errors import AllCandidatesFailedError
from mixllm_core.testing import HashingEncoder
from mixllm_langchain import MixLLMChat
from mixllm_langchain.testing import ScriptedChatModel
from mixllm_llamaindex import MixLLM
from mixllm_llamaindex.testing import ScriptedLLM

PRICES = {"a": (0.1, 0.4), "b": (1.0, 4.0), "c": (5.0, 15.0)}
QUERY = "Summarise the causes of the French Revolution in two sentences."
SCENARIOS = ("healthy", "flaky", "flaky_all", "hang", "timeout", "rate_limit", "cancel", "outage")


# ---------------------------------------------------------------------- injected faults
class ServerError(Exception):
    status_code = 503


class RateLimitError(Exception):
    status_code = 429

    def __init__(self, retry_after: float) -> None:
        super().__init__("429 Too Many Requests")
        self.retry_after = retry_after


@dataclass
class Behaviour:
    """What one child does per call: answer after ``delay_s`` (× a random factor in
    ``spread``), or fail / hang / rate-limit / time out on ``rate`` of its calls."""

    delay_s: float
    fault: str = "none"  # none | fail | hang | timeout | rate_limit
    rate: float = 0.0
    hang_s: float = 1.0
    spread: tuple[float, float] = (1.0, 1.0)
    seed: int = 0
    calls: int = 0
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def plan(self) -> tuple[float, BaseException | None]:
        """Seconds to wait, then the exception to raise (None: answer)."""
        with self._lock:
            self.calls += 1
            hit, u = self._rng.random() < self.rate, self._rng.random()
            delay = self.delay_s * self._rng.uniform(*self.spread)
        if not hit or self.fault == "none":
            return delay, None
        if self.fault == "hang":
            return self.hang_s, None
        if self.fault == "timeout":
            return 2 * self.delay_s, TimeoutError("the provider did not answer (read timeout)")
        if self.fault == "rate_limit":
            return self.delay_s / 4, RateLimitError(0.05)
        error = ConnectionResetError("connection reset by peer") if u < 0.5 else ServerError("503")
        return self.delay_s / 2, error

    def act(self) -> float:
        """Play one call's plan: wait, then raise its fault; returns the wait (sync children)."""
        wait, error = self.plan()
        time.sleep(wait)
        if error is not None:
            raise error
        return wait

    async def aact(self) -> float:
        """:meth:`act` for async children (the wait does not block the event loop)."""
        wait, error = self.plan()
        await asyncio.sleep(wait)
        if error is not None:
            raise error
        return wait


class FaultyChat(ScriptedChatModel):
    """A LangChain child acting out a :class:`Behaviour`."""

    behaviour: Any = Field(default=None, exclude=True)

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        self.behaviour.act()
        return super()._generate(*args, **kwargs)

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        await self.behaviour.aact()
        return super()._generate(*args, **kwargs)

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        wait = self.behaviour.act()
        for i, chunk in enumerate(super()._stream(*args, **kwargs)):
            if i:
                time.sleep(wait / 4)
            yield chunk

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        await self.behaviour.aact()
        for chunk in super()._stream(*args, **kwargs):
            yield chunk


class FaultyLLM(ScriptedLLM):
    """A LlamaIndex child acting out a :class:`Behaviour`."""

    behaviour: Any = Field(default=None, exclude=True)

    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.behaviour.act()
        return super().complete(prompt, formatted, **kwargs)

    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        await self.behaviour.aact()
        return super().complete(prompt, formatted, **kwargs)

    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        self.behaviour.act()
        return super().stream_complete(prompt, formatted, **kwargs)


# ---------------------------------------------------------------------- one run
def behaviours(scenario: str, delay_s: float, timeout_s: float, seed: int) -> dict[str, Behaviour]:
    kinds = {
        "flaky": {"a": ("fail", 0.3), "b": ("fail", 0.3)},
        "flaky_all": {n: ("fail", 0.3) for n in PRICES},
        "hang": {"a": ("hang", 1.0)},
        "timeout": {"a": ("timeout", 0.5)},
        "rate_limit": {"a": ("rate_limit", 0.5)},
        "outage": {n: ("fail", 1.0) for n in PRICES},
    }.get(scenario, {})
    spread = (0.5, 3.0) if scenario == "cancel" else (1.0, 1.0)
    return {
        n: Behaviour(
            delay_s,
            *kinds.get(n, ("none", 0.0)),
            hang_s=10 * timeout_s,
            spread=spread,
            seed=seed + i,
        )
        for i, n in enumerate(PRICES)
    }


def build(adapter: str, kids: dict[str, Behaviour], policy: RetryPolicy, timeout_s: float) -> Any:
    common = {"prices": PRICES, "encoder": HashingEncoder(), "lam": 0.0, "alpha": 0.0}
    common.update(retry_policy=policy, timeout=timeout_s)
    if adapter == "langchain":
        chat = {
            n: FaultyChat(model_name=n, reply="An answer.", behaviour=b) for n, b in kids.items()
        }
        return MixLLMChat(models=chat, **common)
    llms = {n: FaultyLLM(label=n, reply="An answer.", behaviour=b) for n, b in kids.items()}
    return MixLLM(models=llms, **common)


@dataclass
class Call:
    started: float
    latency_s: float
    outcome: str  # ok | failed | cancelled
    attempts: int | None  # child calls this user call made (None: not known)
    all_cooling: bool  # every child was cooling down (or on probation) when it started


def _all_cooling(model: Any) -> bool:
    return model.dispatcher.health.blocked(list(PRICES), probe=False) == set(PRICES)


def _attempts(value: Any) -> int | None:
    meta = getattr(value, "response_metadata", None) or getattr(value, "additional_kwargs", None)
    info = (meta or {}).get("mixllm")
    return None if info is None else len(info["attempts"])


def sync_call(model: Any, scenario: str, i: int) -> Call:
    cooling = _all_cooling(model)
    t0 = time.perf_counter()
    langchain = isinstance(model, MixLLMChat)
    try:
        if scenario == "cancel" and i % 2:  # the caller reads one chunk, then gives up
            stream = model.stream(QUERY) if langchain else model.stream_complete(QUERY)
            next(stream)
            stream.close()
            return Call(t0, time.perf_counter() - t0, "cancelled", None, cooling)
        value = model.invoke(QUERY) if langchain else model.complete(QUERY)
    except AllCandidatesFailedError as exc:
        return Call(t0, time.perf_counter() - t0, "failed", len(exc.attempts), cooling)
    return Call(t0, time.perf_counter() - t0, "ok", _attempts(value), cooling)


async def async_call(model: Any, scenario: str, deadline_s: float, gate: Any) -> Call:
    async with gate:
        return await _async_call(model, scenario, deadline_s)


async def _async_call(model: Any, scenario: str, deadline_s: float) -> Call:
    cooling = _all_cooling(model)
    t0 = time.perf_counter()
    call = model.ainvoke(QUERY) if isinstance(model, MixLLMChat) else model.acomplete(QUERY)
    try:
        if scenario == "cancel":
            value = await asyncio.wait_for(call, deadline_s)
        else:
            value = await call
    except AllCandidatesFailedError as exc:
        return Call(t0, time.perf_counter() - t0, "failed", len(exc.attempts), cooling)
    except TimeoutError:  # the caller's deadline
        return Call(t0, time.perf_counter() - t0, "cancelled", None, cooling)
    return Call(t0, time.perf_counter() - t0, "ok", _attempts(value), cooling)


def direct_latencies(
    adapter: str, mode: str, n: int, delay_s: float, concurrency: int
) -> list[float]:
    """Latency of calling one healthy child directly (the baseline of the added latency)."""
    behaviour = Behaviour(delay_s)
    child: Any = (
        FaultyChat(model_name="a", reply="An answer.", behaviour=behaviour)
        if adapter == "langchain"
        else FaultyLLM(label="a", reply="An answer.", behaviour=behaviour)
    )
    if mode == "sync":
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            child.invoke(QUERY) if adapter == "langchain" else child.complete(QUERY)
            out.append(time.perf_counter() - t0)
        return out

    async def one(gate: asyncio.Semaphore) -> float:
        async with gate:
            t0 = time.perf_counter()
            await (child.ainvoke(QUERY) if adapter == "langchain" else child.acomplete(QUERY))
            return time.perf_counter() - t0

    async def wave() -> list[float]:
        gate = asyncio.Semaphore(concurrency)
        return list(await asyncio.gather(*(one(gate) for _ in range(n))))

    return asyncio.run(wave())


def run(adapter: str, mode: str, scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    delay_s, timeout_s = args.delay_ms / 1e3, args.timeout_ms / 1e3
    kids = behaviours(scenario, delay_s, timeout_s, args.seed)
    model = build(adapter, kids, bench_policy(), timeout_s)
    deadlines = np.random.default_rng(args.seed).uniform(0, 20 * delay_s, args.n)
    t0 = time.perf_counter()
    if mode == "sync":
        calls = [sync_call(model, scenario, i) for i in range(args.n)]
    else:

        async def wave() -> list[Call]:
            gate = asyncio.Semaphore(args.concurrency)
            calls = (async_call(model, scenario, d, gate) for d in deadlines)
            return list(await asyncio.gather(*calls))

        calls = asyncio.run(wave())
    wall = time.perf_counter() - t0
    time.sleep(0.2)  # abandoned sync workers and dropped streams wind down
    gc.collect()
    router = model.router
    rows = router.log.rows()
    recorded = {o["decision_id"] for o in rows["outcomes"]}
    direct = direct_latencies(adapter, mode, args.n, delay_s, args.concurrency)
    ok = [c.latency_s for c in calls if c.outcome == "ok"]
    cooled, after = False, []
    for c in sorted(calls, key=lambda c: c.started):
        cooled = cooled or c.all_cooling
        if cooled and c.attempts is not None:
            after.append(c.attempts)
    p = _percentiles(ok, direct)
    return {
        "adapter": adapter,
        "mode": mode,
        "scenario": scenario,
        "user_calls": len(calls),
        "failed": sum(c.outcome == "failed" for c in calls),
        "cancelled_by_caller": sum(c.outcome == "cancelled" for c in calls),
        "child_calls": sum(b.calls for b in kids.values()),
        "decisions_without_outcome": sum(
            d["decision_id"] not in recorded for d in rows["decisions"]
        ),
        "slots_left_taken": sum(router.tracker.in_flight(n) for n in PRICES),
        "max_child_calls_per_call_once_all_cooling": max(after) if after else None,
        "wall_s": wall,
        **p,
    }


def _percentiles(ok: list[float], direct: list[float]) -> dict[str, float | None]:
    if not ok:
        return dict.fromkeys(("p50_ms", "p99_ms", "direct_p50_ms", "direct_p99_ms"), None)
    r50, r99 = (1e3 * float(np.percentile(ok, q)) for q in (50, 99))
    d50, d99 = (1e3 * float(np.percentile(direct, q)) for q in (50, 99))
    return {
        "p50_ms": r50,
        "p99_ms": r99,
        "direct_p50_ms": d50,
        "direct_p99_ms": d99,
        "added_p50_ms": r50 - d50,
        "added_p99_ms": r99 - d99,
        "ratio_p50": r50 / d50,
        "ratio_p99": r99 / d99,
    }


def bench_policy() -> RetryPolicy:
    """The default policy with its waits scaled to children that answer in milliseconds."""
    return RetryPolicy(
        backoff_s=0.002,
        max_backoff_s=0.02,
        max_wait_s=0.1,
        cooldown_s=2.0,
        rate_limit_cooldown_s=0.1,
    )


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:.1f}" if isinstance(v, float) else str(v)


def table(results: list[dict[str, Any]]) -> str:
    cols = [
        ("adapter", "adapter"),
        ("mode", "mode"),
        ("scenario", "scenario"),
        ("failed", "failed"),
        ("cancelled_by_caller", "cancelled"),
        ("child_calls", "child calls"),
        ("decisions_without_outcome", "no outcome"),
        ("slots_left_taken", "slots left"),
        ("max_child_calls_per_call_once_all_cooling", "max calls/call (cooled)"),
        ("p50_ms", "p50 ms"),
        ("p99_ms", "p99 ms"),
        ("added_p50_ms", "+p50 ms"),
        ("added_p99_ms", "+p99 ms"),
        ("ratio_p50", "×p50"),
        ("ratio_p99", "×p99"),
    ]
    lines = ["| " + " | ".join(h for _, h in cols) + " |", "|" + "---|" * len(cols)]
    for r in results:
        lines.append("| " + " | ".join(_fmt(r.get(k)) for k, _ in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="user calls per run")
    parser.add_argument("--delay-ms", type=float, default=2.0, help="a healthy child's latency")
    parser.add_argument("--timeout-ms", type=float, default=500.0, help="per-attempt timeout")
    parser.add_argument("--concurrency", type=int, default=16, help="async calls in flight")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--adapters", default="langchain,llamaindex")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    HashingEncoder()  # imports
    build("langchain", behaviours("flaky", 0.0, 0.1, 0), bench_policy(), 1.0).invoke("warm up")
    results = []
    for adapter in args.adapters.split(","):
        for scenario in args.scenarios.split(","):
            for mode in ("sync", "async"):
                result = run(adapter, mode, scenario, args)
                results.append(result)
                print(table([result]).splitlines()[-1], flush=True)
    print()
    print(table(results))
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    report = {"settings": settings, "policy": _policy_dict(), "results": results}
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2, default=str))
        print(f"\nwrote {args.out}")


def _policy_dict() -> dict[str, Any]:
    policy = asdict(bench_policy())
    policy["retry_on"] = sorted(k.value for k in policy["retry_on"])
    return policy


if __name__ == "__main__":
    main()
