"""Calling the chosen child with timeouts, retries, fallback and cooldowns; recording every call.

`Dispatcher` is the one path from an integration (LangChain, LlamaIndex) through the core: it
routes a query, calls the chosen child through a callable the adapter supplies and, when that
child fails, retries it or falls back to the next best candidate, as its
:class:`~mixllm_core.dispatch.retry.RetryPolicy` says:

- a failure is classified (:func:`~mixllm_core.dispatch.retry.classify_error`): rate limit, timeout,
  connection, server error, hard error, or an answer the validator rejected;
- a retryable failure is retried on the same child after a jittered exponential backoff (or the
  provider's ``Retry-After``), ``retries_per_child`` times, while the child is not cooling down;
- then the next best child not yet tried is called, up to ``max_retries`` other children;
- a child cools down (:class:`~mixllm_core.dispatch.health.ChildHealth`) after a rate limit or
  ``failure_threshold`` failures in a row (when they are also ``failure_rate`` of its recent
  attempts), and is probed by one call when the cooldown ends; while every candidate cools down
  a call fails at once with :class:`~mixllm_core.errors.AllCoolingDownError`, calling no child
  (a call that already failed may try one child cooling down after transient errors instead).

Each attempt runs under ``timeout`` (:mod:`mixllm_core.dispatch.timeouts`; a stream's first chunk and
each gap between chunks too), and a timeout is a failure of that child. Latency (in-flight count
and service time) is tracked around every attempt, sync or async, whole or streamed, and every
attempt's outcome is recorded here and only here, by :class:`~mixllm_core.dispatch.run.DispatchRun`:
however the attempt ends (an answer, a failure, a timeout, a cancelled call, a stream closed or
dropped early) its slot is released and its outcome written once. The adapter supplies only how
to read its child's answer: a :class:`ReplyReader`. Error text is redacted
(:func:`~mixllm_core.dispatch.redact.describe_error`) before it is stored or shown anywhere.

Async calls are micro-batched (:class:`~mixllm_core.dispatch.microbatch.MicroBatcher`): the first attempts
of the calls waiting at the same moment on one event loop are routed together by one
``router.route_batch`` in a worker thread, grouped by what they exclude and their routing
arguments. A batcher lives as long as its event loop, and no longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import random
import time
import warnings
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Sequence,
)
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

from ..decision import RoutingDecision
from ..errors import (
    AllCandidatesFailedError,
    AllCoolingDownError,
    ChildCallError,
    ConfigError,
)
from ..spec import CallUsage
from ..text import Query, query_text
from .health import ChildHealth
from .microbatch import MicroBatcher
from .protocols import DispatchRouter
from .results import Attempt, DispatchResult, Reply, ReplyReader, read_text
from .retry import RetryPolicy
from .run import DispatchRun, Step, discard, price, route_only, start_batch
from .timeouts import END, WorkerThreads, anext_within, await_within, call_within, next_within
from .validate import AnswerValidator

__all__ = [
    "AllCandidatesFailedError",
    "AllCoolingDownError",
    "Attempt",
    "ChildCallError",
    "DispatchResult",
    "DispatchRouter",
    "Dispatcher",
    "Reply",
    "ReplyReader",
    "read_text",
]

T = TypeVar("T")


def price_call(
    router: DispatchRouter,
    llm: str,
    prompt: str,
    answer: str | None,
    reported: tuple[int, int] | None,
) -> CallUsage:
    """Deprecated: use ``router.specs[llm].price_call(prompt, answer, reported)``."""
    warnings.warn(
        "mixllm_core.dispatch.price_call is deprecated; use LLMSpec.price_call(prompt, answer, "
        "reported_tokens) on router.specs[llm].",
        DeprecationWarning,
        stacklevel=2,
    )
    return price(router, llm, prompt, Reply(answer, reported))


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}, got {value!r}.")


def _check_timeout(timeout: object) -> None:
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        ok = False
    else:
        ok = 0 < timeout < float("inf")
    if not ok:
        raise ConfigError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}.")


def _open(
    open_stream: Callable[[str, RoutingDecision], Iterator[T]], llm: str, decision: RoutingDecision
) -> Iterator[T]:
    return iter(open_stream(llm, decision))


def _close(iterator: object, context: contextvars.Context | None) -> None:
    """Close a child's sync stream (no-op while a worker still runs it)."""
    if isinstance(iterator, Generator):
        with contextlib.suppress(Exception):
            context.run(iterator.close) if context is not None else iterator.close()


def _no_chunk(llm: str, run: DispatchRun) -> str:
    """The timeout message of a stream's wait for its next chunk."""
    return f"{llm} sent no {'next' if run.chunks else 'first'} chunk"


async def _aclose(iterator: object) -> None:
    """Close a child's async stream."""
    if isinstance(iterator, AsyncGenerator):
        with contextlib.suppress(Exception):
            await iterator.aclose()


# ---------------------------------------------------------------------- the dispatcher
class Dispatcher:
    """Route → call (timeout) → retry / fall back / cool down → record, for one router.

    Args:
        router: A :class:`~mixllm_core.MixLLMRouter` (or anything with :class:`DispatchRouter`).
        max_retries: Other children tried after a child fails (0: no fallback).
        retry_policy: Same-child retries, backoff and cooldowns (default :class:`RetryPolicy`).
        failure_threshold: Shorthand for the policy's field (None: the policy's, 3).
        cooldown_s: Shorthand for the policy's field (None: the policy's, 30 s).
        timeout: Seconds an attempt may take (a stream: its first chunk, and each next one)
            before it counts as a failed attempt; None: no limit.
        validator: Judges each answer (:mod:`mixllm_core.dispatch.validate`, e.g. ``non_empty``); a
            rejected answer is a failure of that child. None: every answer is accepted.
        clock: Monotonic clock (injectable).
        sleep: Waits between retries in sync calls (injectable).
        asleep: Waits between retries in async calls (injectable).
        seed: Seed of the backoff jitter.
        micro_batch: Route the first attempts of concurrent async calls together (see the
            module docstring); False routes each async call on its own.
        reader: Reads the children's answers (text and reported tokens) for the recorded
            outcome; the default reads string answers.
        max_attempts: Deprecated spelling of ``max_retries + 1``.

    Example:
        >>> from mixllm_core import LLMSpec, MixLLMRouter
        >>> from mixllm_core.testing import HashingEncoder
        >>> router = MixLLMRouter([LLMSpec("small", 0.15, 0.6), LLMSpec("large", 2.5, 10.0)],
        ...                       encoder=HashingEncoder())
        >>> def invoke(name, decision):
        ...     if name == "large":
        ...         raise PermissionError("403 for https://api.example.com/v1?key=secret123")
        ...     return f"{name}: hello"
        >>> done = Dispatcher(router, timeout=30).call("Say hello", invoke, lam=100.0)
        >>> done.value, [a.error for a in done.attempts]
        ('small: hello', ['PermissionError: 403 for https://api.example.com/v1?key=[REDACTED]', ''])
        >>> [o["error"] is None for o in router.log.rows()["outcomes"]]
        [False, True]
    """

    def __init__(
        self,
        router: DispatchRouter,
        *,
        max_retries: int = 2,
        retry_policy: RetryPolicy | None = None,
        failure_threshold: int | None = None,
        cooldown_s: float | None = None,
        timeout: float | None = None,
        validator: AnswerValidator | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        seed: int | None = None,
        micro_batch: bool = True,
        reader: ReplyReader = read_text,
        max_attempts: int | None = None,
    ) -> None:
        if max_attempts is not None:
            warnings.warn(
                "Dispatcher(max_attempts=n) is deprecated; use max_retries=n - 1 (other "
                "children tried after a failure).",
                DeprecationWarning,
                stacklevel=2,
            )
            _check_int("max_attempts", max_attempts, 1)
            max_retries = max_attempts - 1
        _check_int("max_retries", max_retries, 0)
        if retry_policy is not None and not isinstance(retry_policy, RetryPolicy):
            raise ConfigError(f"retry_policy must be a RetryPolicy or None, got {retry_policy!r}.")
        policy = retry_policy or RetryPolicy()
        if failure_threshold is not None:
            policy = replace(policy, failure_threshold=failure_threshold)
        if cooldown_s is not None:
            policy = replace(policy, cooldown_s=cooldown_s)
        _check_timeout(timeout)
        if validator is not None and not callable(validator):
            raise ConfigError(f"validator must be a callable or None, got {validator!r}.")
        if not isinstance(micro_batch, bool):
            raise ConfigError(f"micro_batch must be True or False, got {micro_batch!r}.")
        self.router = router
        self.max_retries = max_retries
        self.policy = policy
        self.timeout = timeout
        self.validator = validator
        self.clock = clock
        self.sleep = sleep
        self.asleep = asleep
        self.rng = random.Random(seed)
        self.micro_batch = micro_batch
        self.reader = reader
        self.health = ChildHealth(policy, clock, board=router.cooldown_board)
        self.workers = WorkerThreads()
        # one batcher per live event loop; a batcher holds no reference to its loop when idle
        self._batchers: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, MicroBatcher[DispatchRun, RoutingDecision]
        ] = weakref.WeakKeyDictionary()

    @property
    def failure_threshold(self) -> int:
        """Consecutive failures that put a child on cooldown (the policy's)."""
        return self.policy.failure_threshold

    @property
    def cooldown_s(self) -> float:
        """Cooldown after timeouts, connection and server errors (the policy's)."""
        return self.policy.cooldown_s

    # ------------------------------------------------------------------ health
    def cooling_down(self) -> set[str]:
        """The children cooling down now (not routed to; a pinned call still reaches them)."""
        return set(self.health.cooling_down())

    # ------------------------------------------------------------------ routing
    def next_decision(
        self,
        query: Query,
        *,
        tried: Sequence[str] = (),
        pin: str | None = None,
        exclude: Iterable[str] = (),
        **route_kwargs: Any,
    ) -> RoutingDecision:
        """The decision for the next attempt: the pinned child, else the best not yet tried
        and not cooling down (reserves nothing; the call forms route through their run).

        ``exclude`` names children never to use for this query (e.g. ones without tool calling).

        Raises:
            AllCoolingDownError: every child left is cooling down.
            EmptyPoolError: every child was tried or excluded.
        """
        if pin is not None:
            return route_only(self.router, query, pin, **route_kwargs)
        run = self._run(query, None, exclude, route_kwargs)
        run.tried.update(tried)
        try:
            return self.router.route(query, exclude=run.skip(reserve=False), **route_kwargs)
        finally:
            self.health.release(run)

    async def _astart(self, run: DispatchRun) -> RoutingDecision:
        """Start the next attempt of ``run`` off the event loop (micro-batched when it can be);
        a call cancelled while it waits ends the tracking begun for it."""
        try:
            if not self.micro_batch or run.attempts or run.pin is not None:
                return await asyncio.to_thread(run.start)
            loop = asyncio.get_running_loop()
            batcher = self._batchers.get(loop)
            if batcher is None:
                batcher = self._batchers[loop] = MicroBatcher(start_batch, discard=discard)
            return await batcher.submit(run)
        except asyncio.CancelledError as exc:
            run.abandon(exc)  # no-op unless its decision arrived just as it was cancelled
            raise

    def _run(
        self, query: Query, pin: str | None, exclude: Iterable[str], route_kwargs: dict[str, Any]
    ) -> DispatchRun:
        return DispatchRun(self, query_text(query), pin, frozenset(exclude), route_kwargs)

    def _after(self, step: Step) -> None:
        """Raise the step's error, or wait before the next attempt (sync calls)."""
        if step.error is not None:
            raise step.error
        if step.wait > 0:
            self.sleep(step.wait)

    async def _aafter(self, step: Step) -> None:
        if step.error is not None:
            raise step.error
        if step.wait > 0:
            await self.asleep(step.wait)

    # ------------------------------------------------------------------ the four call forms
    def call(
        self,
        query: Query,
        invoke: Callable[[str, RoutingDecision], T],
        *,
        pin: str | None = None,
        exclude: Iterable[str] = (),
        **route_kwargs: Any,
    ) -> DispatchResult:
        """Route ``query`` and return ``invoke(child_name, decision)``, retrying and falling back
        on failure (see the module docstring).

        Raises:
            AllCandidatesFailedError: the pinned child, or every child allowed, failed.
            AllCoolingDownError: every child left is cooling down (a subclass of the above).
            UnknownLLMError: ``pin`` is not in the pool.
        """
        run = self._run(query, pin, exclude, route_kwargs)
        while True:
            decision = run.start()
            with run.attempt() as ended:
                value = call_within(
                    self.workers,
                    partial(invoke, decision.llm, decision),
                    self.timeout,
                    f"{decision.llm} gave no answer",
                )
            step = run.answered(value) if ended.step is None else ended.step
            if isinstance(step, DispatchResult):
                return step
            self._after(step)

    async def acall(
        self,
        query: Query,
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
            decision = await self._astart(run)
            with run.attempt() as ended:
                value = await await_within(
                    invoke(decision.llm, decision), self.timeout, f"{decision.llm} gave no answer"
                )
            step = run.answered(value) if ended.step is None else ended.step
            if isinstance(step, DispatchResult):
                return step
            await self._aafter(step)

    def stream(
        self,
        query: Query,
        open_stream: Callable[[str, RoutingDecision], Iterator[T]],
        *,
        pin: str | None = None,
        exclude: Iterable[str] = (),
        on_done: Callable[[DispatchResult], None] | None = None,
        **route_kwargs: Any,
    ) -> Generator[tuple[RoutingDecision, T], None, None]:
        """Yield ``(decision, chunk)``; retries and falls back only while no chunk was yielded.

        ``on_done`` receives the :class:`DispatchResult` (value None, usage read from the
        chunks) once the stream ends. A stream the consumer closes early (or drops) still ends
        the child's latency tracking, and its outcome is recorded with what it used so far.
        """
        run = self._run(query, pin, exclude, route_kwargs)
        while True:
            decision = run.start()
            llm, timeout = decision.llm, self.timeout
            context = None if timeout is None else contextvars.copy_context()
            chunks: Iterator[T] | None = None
            try:
                with run.attempt() as ended:
                    opened = call_within(
                        self.workers,
                        partial(_open, open_stream, llm, decision),
                        timeout,
                        f"{llm} did not open its stream",
                        context,
                    )
                    chunks = opened
                    while True:
                        what = _no_chunk(llm, run)
                        chunk = next_within(self.workers, opened, context, timeout, what)
                        if chunk is END:
                            break
                        run.read(chunk)
                        yield decision, chunk
            except BaseException:  # closed early (GeneratorExit) or interrupted: abandoned
                _close(chunks, context)
                raise
            step = run.finish_stream(on_done) if ended.step is None else ended.step
            if step is None:
                return
            _close(chunks, context)
            self._after(step)

    async def astream(
        self,
        query: Query,
        open_stream: Callable[[str, RoutingDecision], AsyncIterator[T]],
        *,
        pin: str | None = None,
        exclude: Iterable[str] = (),
        on_done: Callable[[DispatchResult], None] | None = None,
        **route_kwargs: Any,
    ) -> AsyncGenerator[tuple[RoutingDecision, T], None]:
        """Async :meth:`stream`; routing runs in a worker thread, off the loop (micro-batched)."""
        run = self._run(query, pin, exclude, route_kwargs)
        while True:
            decision = await self._astart(run)
            chunks: AsyncIterator[T] | None = None
            try:
                with run.attempt() as ended:
                    chunks = aiter(open_stream(decision.llm, decision))
                    while True:
                        what = _no_chunk(decision.llm, run)
                        chunk = await anext_within(chunks, self.timeout, what)
                        if chunk is END:
                            break
                        run.read(chunk)
                        yield decision, chunk
            except GeneratorExit:  # closed early: abandoned (a cancelled call is not closed)
                await _aclose(chunks)
                raise
            step = run.finish_stream(on_done) if ended.step is None else ended.step
            if step is None:
                return
            await _aclose(chunks)
            await self._aafter(step)
