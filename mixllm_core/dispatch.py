"""Calling the chosen child with fallback, and recording what every call did.

`Dispatcher` is the one path from an integration (LangChain, LlamaIndex) through the core: it
routes a query, calls the chosen child through a callable the adapter supplies and, when that
child fails (an exception, or a timeout raised by the child), puts a child that keeps failing on
a cooldown and tries the next best candidate, up to ``max_retries`` more. Latency (in-flight
count and service time) is tracked around every child call, sync or async, whole or streamed.

Every attempt's outcome is recorded here and only here (``router.record_outcome``): a success with
its latency, tokens and cost; a failure with its error; a stream closed or a call cancelled
before it ended, with what it had used so far. The adapter supplies only how to read its child's
answer: a :class:`ReplyReader` that returns the answer's text and reported token counts. Error
text is redacted (:func:`~mixllm_core.redact.describe_error`) before it is stored or shown anywhere.

Async calls are micro-batched (:class:`~mixllm_core.microbatch.MicroBatcher`): the first attempts
of the calls waiting at the same moment on one event loop are routed together by one
``router.route_batch`` in a worker thread, grouped by what they exclude and their routing
arguments.
"""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
import weakref
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol, TypeVar

from .decision import DecisionPolicy, RoutingDecision
from .errors import ConfigError, EmptyPoolError, MixLLMError, UnknownLLMError, check_non_negative
from .latency import LatencyTracker
from .microbatch import MicroBatcher
from .redact import describe_error
from .spec import CallUsage, LLMSpec
from .text import Query, query_text

__all__ = [
    "AllCandidatesFailedError",
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


# ---------------------------------------------------------------------- what a call produced
@dataclass(frozen=True)
class Attempt:
    """One try of one child; ``error`` is empty for the one that answered (redacted text)."""

    llm: str
    decision_id: str
    latency_s: float
    error: str = ""


class AllCandidatesFailedError(MixLLMError, RuntimeError):
    """Every candidate tried for a query failed; ``attempts`` says how.

    Its ``__cause__`` is a :class:`ChildCallError` for the last failure: the child's traceback
    with its message redacted (the child's own exception, which may quote an API key, is not
    chained).
    """

    def __init__(self, attempts: list[Attempt]) -> None:
        self.attempts = attempts
        detail = "; ".join(f"{a.llm}: {a.error}" for a in attempts)
        super().__init__(f"All {len(attempts)} candidate LLM(s) failed: {detail}")


class ChildCallError(MixLLMError, RuntimeError):
    """A child's failure, with the child's traceback and its message redacted.

    Attributes:
        exc_type: The class of the exception the child raised.
    """

    def __init__(self, message: str, exc_type: type[BaseException]) -> None:
        super().__init__(message)
        self.exc_type = exc_type


@dataclass(frozen=True)
class Reply:
    """What an adapter read from a child's answer: its text and the ``(input, output)`` tokens
    the child reported (None when it reported none; the dispatcher then estimates them)."""

    text: str | None = None
    tokens: tuple[int, int] | None = None


class ReplyReader(Protocol):
    """Reads a child's answer for the dispatcher, whole or one stream chunk at a time.

    Called with the answer (or chunk) and the :class:`Reply` read so far: None for a whole
    answer and a stream's first chunk. Returns the reply including this value, so an adapter
    decides how its chunks combine (text deltas appended or cumulative text replaced; usage
    summed or the last report kept).
    """

    def __call__(self, value: Any, so_far: Reply | None, /) -> Reply: ...


def read_text(value: Any, so_far: Reply | None, /) -> Reply:
    """The default :class:`ReplyReader`: string answers (chunks appended), no reported usage."""
    text = value if isinstance(value, str) else None
    if so_far is not None and so_far.text is not None:
        text = so_far.text + (text or "")
    return Reply(text)


@dataclass
class DispatchResult:
    """The decision that answered, the answer, its usage and every attempt made on the way.

    ``value`` is the child's answer for :meth:`Dispatcher.call` / ``acall`` and None for streams.
    """

    decision: RoutingDecision
    value: Any
    latency_s: float
    attempts: list[Attempt] = field(default_factory=list)
    usage: CallUsage | None = None

    def to_dict(self) -> dict[str, Any]:
        """The routing metadata both integrations attach to an answer (JSON-friendly): the
        decision, ``latency_s``, ``cost``, ``input_tokens``, ``output_tokens``,
        ``usage_estimated`` and ``attempts`` (llm, decision_id, latency_s, error)."""
        usage = self.usage
        return {
            **self.decision.to_dict(),
            "latency_s": self.latency_s,
            "cost": None if usage is None else usage.cost,
            "input_tokens": None if usage is None else usage.input_tokens,
            "output_tokens": None if usage is None else usage.output_tokens,
            "usage_estimated": None if usage is None else usage.estimated,
            "attempts": [asdict(a) for a in self.attempts],
        }


class DispatchRouter(Protocol):
    """What the :class:`Dispatcher` needs of a router (:class:`~mixllm_core.MixLLMRouter` has it)."""

    @property
    def specs(self) -> Mapping[str, LLMSpec]: ...

    @property
    def tracker(self) -> LatencyTracker: ...

    def route(
        self,
        query: Query,
        *,
        lam: float | None = ...,
        policy: DecisionPolicy | None = ...,
        exclude: Iterable[str] = ...,
    ) -> RoutingDecision: ...

    def route_batch(
        self,
        queries: Sequence[Query],
        *,
        lam: float | None = ...,
        policy: DecisionPolicy | None = ...,
        exclude: Iterable[str] = ...,
    ) -> list[RoutingDecision]: ...

    def record_outcome(
        self,
        decision_id: str,
        *,
        latency_s: float | None = ...,
        cost: float | None = ...,
        input_tokens: int | None = ...,
        output_tokens: int | None = ...,
        error: str | None = ...,
    ) -> None: ...


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
    return _price(router, llm, prompt, Reply(answer, reported))


def _price(router: DispatchRouter, llm: str, prompt: str, reply: Reply) -> CallUsage:
    """Tokens and cost of a call to ``llm``; cost None when ``llm`` has left the pool."""
    spec = router.specs.get(llm)
    if spec is None:
        return replace(LLMSpec(llm).price_call(prompt, reply.text, reply.tokens), cost=None)
    return spec.price_call(prompt, reply.text, reply.tokens)


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}, got {value!r}.")


def _stopped(exc: BaseException) -> str:
    """The error recorded for an attempt that neither answered nor failed."""
    if isinstance(exc, GeneratorExit):
        return "GeneratorExit: the stream was closed before it ended"
    if isinstance(exc, asyncio.CancelledError):
        return "CancelledError: the call was cancelled"
    return f"{type(exc).__name__}: the call was interrupted"


# ---------------------------------------------------------------------- the dispatcher
class Dispatcher:
    """Route → call → fall back on failure → record, for one router and its named children.

    Args:
        router: A :class:`~mixllm_core.MixLLMRouter` (or anything with :class:`DispatchRouter`).
        max_retries: Other children tried after a child fails (0: no fallback).
        failure_threshold: Consecutive failures that put a child on cooldown.
        cooldown_s: Seconds a child on cooldown is not chosen (unless it is pinned).
        clock: Monotonic clock (injectable).
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
        ...         raise TimeoutError("https://api.example.com/v1?key=secret123 timed out")
        ...     return f"{name}: hello"
        >>> done = Dispatcher(router).call("Say hello", invoke, lam=100.0)
        >>> done.value, [a.error for a in done.attempts]
        ('small: hello', ['TimeoutError: https://api.example.com/v1?key=[REDACTED] timed out', ''])
        >>> [o["error"] is None for o in router.log.rows()["outcomes"]]
        [False, True]
    """

    def __init__(
        self,
        router: DispatchRouter,
        *,
        max_retries: int = 2,
        failure_threshold: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
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
        _check_int("failure_threshold", failure_threshold, 1)
        check_non_negative("cooldown_s", cooldown_s)
        if not isinstance(micro_batch, bool):
            raise ConfigError(f"micro_batch must be True or False, got {micro_batch!r}.")
        self.router = router
        self.max_retries = max_retries
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.micro_batch = micro_batch
        self.reader = reader
        self._batchers: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, MicroBatcher[_Run, RoutingDecision]
        ] = weakref.WeakKeyDictionary()
        self._failures: dict[str, int] = {}
        self._cooldown_until: dict[str, float] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ health
    def cooling_down(self) -> set[str]:
        """The children on cooldown now (they are chosen only when nothing else is left)."""
        now = self.clock()
        with self._lock:
            return {n for n, t in self._cooldown_until.items() if t > now}

    def _health(self, llm: str, ok: bool) -> None:
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
        query: Query,
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

    async def _astart(self, run: _Run) -> RoutingDecision:
        """Start the next attempt of ``run`` off the event loop (micro-batched when it can be);
        a call cancelled while it waits ends the tracking begun for it."""
        try:
            if not self.micro_batch or run.attempts or run.pin is not None:
                return await asyncio.to_thread(run.start)
            loop = asyncio.get_running_loop()
            batcher = self._batchers.get(loop)
            if batcher is None:
                batcher = self._batchers[loop] = MicroBatcher(
                    self._start_batch, discard=lambda r, _: r.abandon(asyncio.CancelledError())
                )
            return await batcher.submit(run)
        except asyncio.CancelledError as exc:
            run.abandon(exc)  # no-op unless its decision arrived just as it was cancelled
            raise

    def _start_batch(self, runs: Sequence[_Run]) -> list[RoutingDecision | BaseException]:
        """Route the first attempts of ``runs`` (worker thread): one ``route_batch`` per group of
        runs with the same skip set and routing arguments. When a group's batch fails, its runs
        are routed one by one, so an error reaches only the call whose query caused it."""
        out: dict[int, RoutingDecision | BaseException] = {}
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
                    [runs[i].text for i in rows], exclude=skip, **kwargs
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
        return [out[i] for i in range(len(runs))]

    def _run(
        self, query: Query, pin: str | None, exclude: Iterable[str], route_kwargs: dict[str, Any]
    ) -> _Run:
        return _Run(self, query_text(query), pin, frozenset(exclude), route_kwargs)

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
        """Route ``query`` and return ``invoke(child_name, decision)``, falling back on failure.

        Raises:
            AllCandidatesFailedError: the pinned child, or every child allowed, failed.
            UnknownLLMError: ``pin`` is not in the pool.
        """
        run = self._run(query, pin, exclude, route_kwargs)
        while True:
            decision = run.start()
            try:
                value = invoke(decision.llm, decision)
            except Exception as exc:  # noqa: BLE001 - any child failure triggers the fallback
                failure = run.fail(exc)
            except BaseException as exc:  # interrupted: record it, then let it through
                run.abandon(exc)
                raise
            else:
                return run.succeed(value)
            if failure is not None:  # raised here, outside the handler: no raw child error chained
                raise failure

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
            try:
                value = await invoke(decision.llm, decision)
            except Exception as exc:  # noqa: BLE001
                failure = run.fail(exc)
            except BaseException as exc:  # cancelled
                run.abandon(exc)
                raise
            else:
                return run.succeed(value)
            if failure is not None:
                raise failure

    def stream(
        self,
        query: Query,
        open_stream: Callable[[str, RoutingDecision], Iterator[T]],
        *,
        pin: str | None = None,
        exclude: Iterable[str] = (),
        on_done: Callable[[DispatchResult], None] | None = None,
        **route_kwargs: Any,
    ) -> Iterator[tuple[RoutingDecision, T]]:
        """Yield ``(decision, chunk)``; falls back only while no chunk has been yielded.

        ``on_done`` receives the :class:`DispatchResult` (value None, usage read from the
        chunks) once the stream ends. A stream the consumer closes early still ends the child's
        latency tracking, and its outcome is recorded with what it used so far.
        """
        run = self._run(query, pin, exclude, route_kwargs)
        while True:
            decision = run.start()
            try:
                for chunk in open_stream(decision.llm, decision):
                    run.read(chunk)
                    yield decision, chunk
            except Exception as exc:  # noqa: BLE001
                failure = run.fail(exc, final=run.chunks > 0)
            except BaseException as exc:  # closed early (GeneratorExit) or interrupted
                run.abandon(exc)
                raise
            else:
                run.finish_stream(on_done)
                return
            if failure is not None:
                raise failure

    async def astream(
        self,
        query: Query,
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
            decision = await self._astart(run)
            try:
                async for chunk in open_stream(decision.llm, decision):
                    run.read(chunk)
                    yield decision, chunk
            except Exception as exc:  # noqa: BLE001
                failure = run.fail(exc, final=run.chunks > 0)
            except BaseException as exc:  # closed early or cancelled
                run.abandon(exc)
                raise
            else:
                run.finish_stream(on_done)
                return
            if failure is not None:
                raise failure


class _Run:
    """The attempts of one dispatched query: route, track, read, record, decide whether to go on.

    Every attempt ends in exactly one of :meth:`succeed` / :meth:`finish_stream`, :meth:`fail`
    or :meth:`abandon`, and each of them records the attempt's outcome on the router once.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        text: str,
        pin: str | None,
        exclude: frozenset[str],
        route_kwargs: dict[str, Any],
    ) -> None:
        self.d = dispatcher
        self.text = text
        self.pin = pin
        self.exclude = exclude
        self.route_kwargs = route_kwargs
        self.attempts: list[Attempt] = []
        self.decision: RoutingDecision | None = None
        self.token: str | None = None
        self.started = 0.0
        self.reply: Reply | None = None
        self.chunks = 0
        self.stopped: BaseException | None = None  # set by abandon(): the caller has left
        self._lock = threading.Lock()  # begin() may run in a worker thread while abandon() runs

    def start(self) -> RoutingDecision:
        tried = [a.llm for a in self.attempts]
        return self.begin(
            self.d.next_decision(
                self.text, tried=tried, pin=self.pin, exclude=self.exclude, **self.route_kwargs
            )
        )

    def begin(self, decision: RoutingDecision) -> RoutingDecision:
        """Start the attempt ``decision`` chose: latency tracking and the clock."""
        with self._lock:
            self.decision = decision
            self.token = self.d.router.tracker.start(decision.llm)
            self.started = self.d.clock()
            self.reply, self.chunks = None, 0
            stopped = self.stopped
        if stopped is not None:  # the caller left while this was routed in a worker thread
            self.abandon(stopped)
        return decision

    def read(self, chunk: Any) -> None:
        """Fold a streamed chunk into the reply read so far."""
        self.reply = self.d.reader(chunk, self.reply)
        self.chunks += 1

    def _take(self) -> tuple[RoutingDecision, str] | None:
        """The open attempt's decision and tracker token, now closed; None when none is open."""
        with self._lock:
            decision, token = self.decision, self.token
            self.token = None
        return None if decision is None or token is None else (decision, token)

    def _end(
        self, opened: tuple[RoutingDecision, str] | None, error: str | None, *, health: bool = True
    ) -> tuple[RoutingDecision, Attempt]:
        """End the attempt ``opened`` (tracker, health) and return its decision and record."""
        if opened is None:
            raise RuntimeError("No attempt is open.")  # a bug in the dispatcher
        decision, token = opened
        self.d.router.tracker.finish(token, ok=error is None)
        if health:
            self.d._health(decision.llm, error is None)
        latency = self.d.clock() - self.started
        attempt = Attempt(decision.llm, decision.decision_id, latency, error or "")
        self.attempts.append(attempt)
        return decision, attempt

    def _record(self, attempt: Attempt, usage: CallUsage | None) -> None:
        """The one place an outcome reaches the router."""
        self.d.router.record_outcome(
            attempt.decision_id,
            latency_s=attempt.latency_s,
            cost=None if usage is None else usage.cost,
            input_tokens=None if usage is None else usage.input_tokens,
            output_tokens=None if usage is None else usage.output_tokens,
            error=attempt.error or None,
        )

    def _usage(self, llm: str, reply: Reply | None) -> CallUsage | None:
        return None if reply is None else _price(self.d.router, llm, self.text, reply)

    def succeed(self, value: Any) -> DispatchResult:
        """The child answered ``value`` (a whole answer): record it and return the result."""
        self.reply = self.d.reader(value, None)
        return self._succeed(value)

    def finish_stream(self, on_done: Callable[[DispatchResult], None] | None) -> None:
        """The child's stream ended: record it and hand the result to ``on_done``."""
        if self.reply is None:
            self.reply = Reply("")
        done = self._succeed(None)
        if on_done is not None:
            on_done(done)

    def _succeed(self, value: Any) -> DispatchResult:
        decision, attempt = self._end(self._take(), None)
        usage = self._usage(decision.llm, self.reply)
        self._record(attempt, usage)
        return DispatchResult(decision, value, attempt.latency_s, list(self.attempts), usage)

    def fail(self, exc: Exception, *, final: bool = False) -> AllCandidatesFailedError | None:
        """Record a failed attempt; return the error to raise when no other attempt is allowed.

        The caller raises it outside its ``except`` block, so the child's own exception (whose
        text may hold a key) is not chained; a redacted :class:`ChildCallError` with the child's
        traceback is its cause instead.
        """
        decision, attempt = self._end(self._take(), describe_error(exc))
        self._record(attempt, self._usage(decision.llm, self.reply) if self.chunks else None)
        allowed = min(self.d.max_retries + 1, len(self.d.router.specs))
        if not (final or self.pin is not None or len(self.attempts) >= allowed):
            return None
        failure = AllCandidatesFailedError(self.attempts)
        failure.__cause__ = ChildCallError(attempt.error, type(exc)).with_traceback(
            exc.__traceback__
        )
        return failure

    def abandon(self, exc: BaseException) -> None:
        """End an attempt nobody finished (a stream closed early, a cancelled call) and record
        it with what it used so far; no-op when no attempt is open."""
        with self._lock:
            self.stopped = exc
        opened = self._take()
        if opened is None:
            return
        decision, attempt = self._end(opened, _stopped(exc), health=False)
        self._record(attempt, self._usage(decision.llm, self.reply) if self.chunks else None)
