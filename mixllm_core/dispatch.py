"""Calling the chosen child with fallback: the part the LangChain and LlamaIndex adapters share.

`Dispatcher` routes a query, calls the chosen child through a callable the adapter supplies, and
when that child fails (an exception, or a timeout raised by the child) records the failure, puts a
child that keeps failing on a cooldown, and tries the next best candidate, up to ``max_attempts``.
Latency (in-flight count and service time) is tracked around every child call, sync or async.
Outcomes are appended to ``router.outcomes`` (and to the router's log when it has one).

Async calls are micro-batched: the first attempts of the calls waiting at the same moment on one
event loop are routed together by one ``router.route_batch`` in a worker thread (one encoder pass,
one prediction call), grouped by what they exclude and their routing arguments. The batch is
whatever is waiting, so a lone call is not delayed and batches grow with the load.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from .data import estimate_tokens
from .decision import RoutingDecision
from .errors import ConfigError, EmptyPoolError, MixLLMError, UnknownLLMError

__all__ = [
    "AllCandidatesFailedError",
    "Attempt",
    "CallUsage",
    "DispatchResult",
    "Dispatcher",
    "price_call",
]

T = TypeVar("T")


class AllCandidatesFailedError(MixLLMError, RuntimeError):
    """Every candidate tried for a query failed; ``attempts`` says how."""

    def __init__(self, attempts: list[Attempt]) -> None:
        self.attempts = attempts
        detail = "; ".join(f"{a.llm}: {a.error}" for a in attempts)
        super().__init__(f"All {len(attempts)} candidate LLM(s) failed: {detail}")


@dataclass(frozen=True)
class Attempt:
    """One try of one child."""

    llm: str
    decision_id: str
    latency_s: float
    error: str = ""


@dataclass
class DispatchResult:
    """The decision that answered, the answer, and every attempt made on the way."""

    decision: RoutingDecision
    value: Any
    latency_s: float
    attempts: list[Attempt] = field(default_factory=list)


@dataclass(frozen=True)
class CallUsage:
    """Tokens and USD cost of one child call (``estimated`` when the child reported no usage)."""

    input_tokens: int
    output_tokens: int
    estimated: bool
    cost: float | None


def price_call(
    router: Any, llm: str, prompt: str, answer: str | None, reported: tuple[int, int] | None
) -> CallUsage:
    """The child's reported ``(input, output)`` tokens, else estimates from the texts, priced
    with the LLM's spec (cost None when the LLM is no longer in the pool)."""
    estimated = reported is None
    if reported is None:
        reported = (estimate_tokens(prompt), 0 if answer is None else estimate_tokens(answer))
    in_tok, out_tok = int(reported[0]), int(reported[1])
    spec = router.specs.get(llm)
    cost = None if spec is None else spec.cost(in_tok, out_tok)
    return CallUsage(in_tok, out_tok, estimated, cost)


class Dispatcher:
    """Route → call → fall back on failure, for one router and a set of named children.

    Args:
        router: A :class:`~mixllm_core.router.MixLLMRouter`.
        max_attempts: Children tried per query before giving up.
        failure_threshold: Consecutive failures that put a child on cooldown.
        cooldown_s: Seconds a child on cooldown is not chosen (unless it is pinned).
        clock: Monotonic clock (injectable).
        micro_batch: Route the first attempts of concurrent async calls together (see the
            module docstring); False routes each async call on its own.
    """

    def __init__(
        self,
        router: Any,
        *,
        max_attempts: int = 3,
        failure_threshold: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        micro_batch: bool = True,
    ) -> None:
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigError(f"max_attempts must be an int >= 1, got {max_attempts!r}.")
        if not isinstance(micro_batch, bool):
            raise ConfigError(f"micro_batch must be True or False, got {micro_batch!r}.")
        self.micro_batch = micro_batch
        self._batchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _MicroBatcher] = (
            weakref.WeakKeyDictionary()
        )
        self.router = router
        self.max_attempts = max_attempts
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self._failures: dict[str, int] = {}
        self._cooldown_until: dict[str, float] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ health
    def cooling_down(self) -> set[str]:
        now = self.clock()
        with self._lock:
            return {n for n, t in self._cooldown_until.items() if t > now}

    def _record(self, llm: str, ok: bool) -> None:
        with self._lock:
            if ok:
                self._failures[llm] = 0
                self._cooldown_until.pop(llm, None)
                return
            self._failures[llm] = self._failures.get(llm, 0) + 1
            if self._failures[llm] >= self.failure_threshold:
                self._cooldown_until[llm] = self.clock() + self.cooldown_s

    # ------------------------------------------------------------------ routing
    def next_decision(
        self,
        query: Any,
        *,
        tried: Sequence[str] = (),
        pin: str | None = None,
        exclude: Iterable[str] = (),
        **route_kwargs: Any,
    ) -> RoutingDecision:
        """The decision for the next attempt: the pinned child, else the best not yet tried.

        ``exclude`` names children never to use for this query (e.g. ones without tool calling).
        """
        pool = set(self.router.specs)
        if pin is not None:
            if pin not in pool:
                raise UnknownLLMError(pin, pool)
            return self.router.route(query, exclude=pool - {pin}, **route_kwargs)
        return self.router.route(query, exclude=self._skip(tried, exclude), **route_kwargs)

    def _skip(self, tried: Iterable[str], exclude: Iterable[str]) -> frozenset[str]:
        """The LLMs not to route to: tried or excluded, and those cooling down if any is left."""
        pool = set(self.router.specs)
        hard = (set(tried) | set(exclude)) & pool
        skip = hard | (self.cooling_down() & pool)
        if skip >= pool:
            skip = hard  # everything left is cooling down: better a tired child than none
        if skip >= pool:
            raise EmptyPoolError(
                f"No LLM left to try for this query: tried {sorted(tried)}, excluded "
                f"{sorted(set(exclude))}, pool {sorted(pool)}."
            )
        return frozenset(skip)

    async def _start_or_release(self, run: _Run) -> RoutingDecision:
        """:meth:`_astart`; a call cancelled while it waits ends the tracking begun for it."""
        try:
            return await self._astart(run)
        except asyncio.CancelledError:
            run.abandon()  # no-op unless its decision arrived just as it was cancelled
            raise

    async def _astart(self, run: _Run) -> RoutingDecision:
        """Start the next attempt of ``run`` off the event loop (micro-batched when it can be)."""
        if not self.micro_batch or run.attempts or run.pin is not None:
            return await asyncio.to_thread(run.start)
        loop = asyncio.get_running_loop()
        batcher = self._batchers.get(loop)
        if batcher is None:
            batcher = self._batchers[loop] = _MicroBatcher(self)
        return await batcher.submit(run)

    def _start_batch(self, runs: Sequence[_Run]) -> list[RoutingDecision | BaseException]:
        """Route the first attempts of ``runs`` (worker thread): one ``route_batch`` per group of
        runs with the same skip set and routing arguments. When a group's batch fails, its runs
        are routed one by one, so an error reaches only the call whose query caused it."""
        out: list[RoutingDecision | BaseException | None] = [None] * len(runs)
        groups: dict[Any, tuple[frozenset[str], dict[str, Any], list[int]]] = {}
        for i, run in enumerate(runs):
            try:
                skip = self._skip((), run.exclude)
            except MixLLMError as exc:  # nothing left to route to
                out[i] = exc
                continue
            key: Any = (skip, tuple(sorted(run.route_kwargs.items())))
            try:
                hash(key)
            except TypeError:  # unhashable routing arguments: a group of its own
                key = ("alone", i)
            groups.setdefault(key, (skip, run.route_kwargs, []))[2].append(i)
        for skip, kwargs, rows in groups.values():
            try:
                decisions = self.router.route_batch(
                    [runs[i].query for i in rows], exclude=skip, **kwargs
                )
            except Exception:  # noqa: BLE001 - find who failed: route the group one by one
                for i in rows:
                    try:
                        out[i] = runs[i].start()
                    except Exception as exc:  # noqa: BLE001 - handed to that call
                        out[i] = exc
                continue
            for i, decision in zip(rows, decisions):
                out[i] = runs[i].begin(decision)
        assert all(r is not None for r in out)  # every run is in exactly one branch above
        return cast("list[RoutingDecision | BaseException]", out)

    def _run(
        self, query: Any, pin: str | None, exclude: Iterable[str], route_kwargs: dict[str, Any]
    ) -> _Run:
        return _Run(self, query, pin, frozenset(exclude), route_kwargs)

    def call(
        self,
        query: Any,
        invoke: Callable[[str, RoutingDecision], T],
        *,
        pin: str | None = None,
        exclude: Iterable[str] = (),
        **route_kwargs: Any,
    ) -> DispatchResult:
        """Route ``query`` and return ``invoke(child_name, decision)``, falling back on failure."""
        run = self._run(query, pin, exclude, route_kwargs)
        while True:
            decision = run.start()
            try:
                value = invoke(decision.llm, decision)
            except Exception as exc:  # noqa: BLE001 - any child failure triggers the fallback
                run.fail(exc)
                continue
            return run.succeed(value)

    async def acall(
        self,
        query: Any,
        invoke: Callable[[str, RoutingDecision], Awaitable[T]],
        *,
        pin: str | None = None,
        exclude: Iterable[str] = (),
        **route_kwargs: Any,
    ) -> DispatchResult:
        """Async :meth:`call`; routing (the embedding) runs in a worker thread, off the loop, and
        is micro-batched with the other async calls waiting at the same moment."""
        run = self._run(query, pin, exclude, route_kwargs)
        while True:
            decision = await self._start_or_release(run)
            try:
                value = await invoke(decision.llm, decision)
            except Exception as exc:  # noqa: BLE001
                run.fail(exc)
                continue
            return run.succeed(value)

    def stream(
        self,
        query: Any,
        open_stream: Callable[[str, RoutingDecision], Iterator[T]],
        *,
        pin: str | None = None,
        exclude: Iterable[str] = (),
        on_done: Callable[[DispatchResult], None] | None = None,
        **route_kwargs: Any,
    ) -> Iterator[tuple[RoutingDecision, T]]:
        """Yield ``(decision, chunk)``; falls back only while no chunk has been yielded.

        ``on_done`` receives the :class:`DispatchResult` (value None) once the stream ends. A
        stream the consumer abandons still ends the child's latency tracking.
        """
        run = self._run(query, pin, exclude, route_kwargs)
        while True:
            decision = run.start()
            yielded = False
            try:
                for chunk in open_stream(decision.llm, decision):
                    yielded = True
                    yield decision, chunk
            except Exception as exc:  # noqa: BLE001
                run.fail(exc, final=yielded)
                continue
            else:
                done = run.succeed(None)
                if on_done is not None:
                    on_done(done)
                return
            finally:
                run.abandon()

    async def astream(
        self,
        query: Any,
        open_stream: Callable[[str, RoutingDecision], AsyncIterator[T]],
        *,
        pin: str | None = None,
        exclude: Iterable[str] = (),
        on_done: Callable[[DispatchResult], None] | None = None,
        **route_kwargs: Any,
    ) -> AsyncIterator[tuple[RoutingDecision, T]]:
        """Async :meth:`stream`; routing runs in a worker thread, off the loop (micro-batched)."""
        run = self._run(query, pin, exclude, route_kwargs)
        while True:
            decision = await self._start_or_release(run)
            yielded = False
            try:
                async for chunk in open_stream(decision.llm, decision):
                    yielded = True
                    yield decision, chunk
            except Exception as exc:  # noqa: BLE001
                run.fail(exc, final=yielded)
                continue
            else:
                done = run.succeed(None)
                if on_done is not None:
                    on_done(done)
                return
            finally:
                run.abandon()


class _Run:
    """The attempts of one dispatched query: route, track, record, decide whether to go on."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        query: Any,
        pin: str | None,
        exclude: frozenset[str],
        route_kwargs: dict[str, Any],
    ) -> None:
        self.d = dispatcher
        self.query = query
        self.pin = pin
        self.exclude = exclude
        self.route_kwargs = route_kwargs
        self.attempts: list[Attempt] = []
        self.decision: RoutingDecision | None = None
        self.token: str | None = None
        self.started = 0.0

    def start(self) -> RoutingDecision:
        tried = [a.llm for a in self.attempts]
        return self.begin(
            self.d.next_decision(
                self.query, tried=tried, pin=self.pin, exclude=self.exclude, **self.route_kwargs
            )
        )

    def begin(self, decision: RoutingDecision) -> RoutingDecision:
        """Start the attempt ``decision`` chose: latency tracking and the clock."""
        self.decision = decision
        self.token = self.d.router.tracker.start(decision.llm)
        self.started = self.d.clock()
        return decision

    def _end(self, error: BaseException | None) -> float:
        assert self.decision is not None and self.token is not None
        self.d.router.tracker.finish(self.token, ok=error is None)
        self.token = None
        latency = self.d.clock() - self.started
        self.d._record(self.decision.llm, error is None)
        self.attempts.append(
            Attempt(
                self.decision.llm,
                self.decision.decision_id,
                latency,
                "" if error is None else f"{type(error).__name__}: {error}",
            )
        )
        return latency

    def fail(self, exc: Exception, *, final: bool = False) -> None:
        """Record a failed attempt; raise when no further attempt is allowed."""
        assert self.decision is not None
        latency = self._end(exc)
        self.d.router.record_outcome(self.decision.decision_id, latency_s=latency, error=repr(exc))
        allowed = min(self.d.max_attempts, len(self.d.router.specs))
        if final or self.pin is not None or len(self.attempts) >= allowed:
            raise AllCandidatesFailedError(self.attempts) from exc

    def succeed(self, value: Any) -> DispatchResult:
        assert self.decision is not None
        latency = self._end(None)
        return DispatchResult(self.decision, value, latency, list(self.attempts))

    def abandon(self) -> None:
        """End the tracking of a call nobody finished (a stream closed early); no-op otherwise."""
        if self.token is not None:
            self.d.router.tracker.finish(self.token, ok=False)
            self.token = None


class _MicroBatcher:
    """The async calls of one event loop waiting for their first routing decision.

    ``submit`` queues a run and awaits its decision. One drain task at a time takes everything
    queued, lets the loop run once more so calls started in the same step join, and routes the
    lot in a worker thread (``Dispatcher._start_batch``); what arrives meanwhile forms the next
    batch.
    """

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.d = dispatcher
        self.pending: list[tuple[_Run, asyncio.Future[RoutingDecision]]] = []
        self.task: asyncio.Task[None] | None = None
        self.batch_sizes: deque[int] = deque(maxlen=10_000)  # the latest, for benchmarks

    async def submit(self, run: _Run) -> RoutingDecision:
        fut: asyncio.Future[RoutingDecision] = asyncio.get_running_loop().create_future()
        self.pending.append((run, fut))
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # calls started in the same loop step join this batch
        while self.pending:
            batch, self.pending = self.pending, []
            self.batch_sizes.append(len(batch))
            try:
                results = await asyncio.to_thread(self.d._start_batch, [r for r, _ in batch])
            except BaseException as exc:  # e.g. the loop shutting down: nobody gets a decision
                for _, fut in batch + self.pending:
                    if isinstance(exc, asyncio.CancelledError):
                        fut.cancel()
                    elif not fut.done():
                        fut.set_exception(exc)
                self.pending = []
                raise
            for (run, fut), result in zip(batch, results):
                if fut.done():  # the caller gave up (cancelled): end what was started for it
                    run.abandon()
                elif isinstance(result, BaseException):
                    fut.set_exception(result)
                else:
                    fut.set_result(result)
