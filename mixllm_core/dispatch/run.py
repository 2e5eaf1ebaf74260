"""`DispatchRun`: the attempts of one dispatched query, from routing to the recorded outcome.

The :class:`~mixllm_core.Dispatcher` drives one run per call: :meth:`DispatchRun.start` routes
the next attempt (the same child again after a retryable failure, else the best child not yet
tried and not cooling down) and starts its latency tracking; every attempt then ends in exactly
one of :meth:`~DispatchRun.answered` / :meth:`~DispatchRun.finish_stream` (the answer is read,
priced and validated), :meth:`~DispatchRun.fail` or :meth:`~DispatchRun.abandon` (the caller
gave up) — the last two chosen by :meth:`~DispatchRun.attempt`, the ``with`` block every call
form, sync or async, wraps around the child's call — and each of them releases the child's in-flight slot and probe, updates its health and
records the attempt's outcome on the router once. What to do next comes back as a :class:`Step`:
wait and retry the same child, fall back to another, or raise.

:func:`start_batch` routes and starts the first attempts of the async calls one micro-batch
holds, together.

A child's bad usage report (negative, NaN or non-integer token counts) or an answer its reader
cannot read never fails the call: the tokens are estimated instead and a warning is logged
(logger ``mixllm_core.dispatch.run``). Recording is best effort for the same reason.
"""

from __future__ import annotations

import asyncio
import logging
import math
import numbers
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

from ..decision import RoutingDecision
from ..errors import (
    AllCandidatesFailedError,
    AllCoolingDownError,
    ChildCallError,
    EmptyPoolError,
    MixLLMError,
    UnknownLLMError,
)
from ..spec import CallUsage, LLMSpec
from ..text import Query
from .protocols import DispatchRouter, RunContext
from .redact import describe_error
from .results import Attempt, DispatchResult, Reply
from .retry import ErrorKind, classify_error, retry_after_s
from .validate import rejection

__all__ = ["AttemptEnd", "DispatchRun", "Step", "route_only", "start_batch"]

logger = logging.getLogger(__name__)

CANCELLED = "cancelled"


@dataclass(frozen=True)
class Step:
    """What the dispatcher does after a failed attempt: wait ``wait`` seconds and start the
    next attempt, or raise ``error`` (no attempt is left)."""

    wait: float = 0.0
    error: AllCandidatesFailedError | None = None


class AttemptEnd:
    """How the ``with`` block around one attempt's call to the child ends, the same for the
    sync and async call forms.

    A child failure (any ``Exception``) is recorded by :meth:`DispatchRun.fail` and suppressed:
    :attr:`step` says what comes next, and the caller acts on it after the block, where the
    child's own exception is not chained to what it raises. Anything else (a cancelled call, a
    stream closed early, an interrupt) abandons the attempt (:meth:`DispatchRun.abandon`) and
    goes through. :attr:`step` stays None when the block ends normally: the child answered.
    """

    def __init__(self, run: DispatchRun) -> None:
        self.run = run
        self.step: Step | None = None

    def __enter__(self) -> AttemptEnd:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if exc is None:
            return False
        if isinstance(exc, Exception):  # any child failure triggers the fallback
            self.step = self.run.fail(exc, final=self.run.chunks > 0)
            return True
        self.run.abandon(exc)  # cancelled, closed early or interrupted: let it through
        return False


def clean_tokens(llm: str, tokens: Any) -> tuple[int, int] | None:
    """The reported ``(input, output)`` tokens when they are whole numbers >= 0, else None
    (treated as not reported) with a warning naming the child and what it sent."""
    if tokens is None:
        return None
    try:
        counts = [
            float(n) if isinstance(n, numbers.Real) and not isinstance(n, bool) else math.nan
            for n in tokens
        ]
    except TypeError:
        counts = []
    if len(counts) != 2 or not all(math.isfinite(n) and n >= 0 and n.is_integer() for n in counts):
        logger.warning(
            "%s reported unusable token counts %r (not two whole numbers >= 0); estimating them "
            "from the texts instead.",
            llm,
            tokens,
        )
        return None
    return int(counts[0]), int(counts[1])


def price(router: DispatchRouter, llm: str, prompt: str, reply: Reply) -> CallUsage:
    """Tokens and cost of a call to ``llm``; cost None when ``llm`` has left the pool."""
    tokens = clean_tokens(llm, reply.tokens)
    spec = router.specs.get(llm)
    if spec is None:
        return replace(LLMSpec(llm).price_call(prompt, reply.text, tokens), cost=None)
    return spec.price_call(prompt, reply.text, tokens)


def route_only(router: DispatchRouter, query: Query, llm: str, **kwargs: Any) -> RoutingDecision:
    """A decision for ``llm`` alone (a pinned call, or a retry of the same child)."""
    pool = set(router.specs)
    if llm not in pool:
        raise UnknownLLMError(llm, pool)
    return router.route(query, exclude=pool - {llm}, **kwargs)


def start_batch(runs: Sequence[DispatchRun]) -> list[RoutingDecision | BaseException]:
    """Route and start the first attempts of ``runs`` of one dispatcher (a worker thread): one
    ``route_batch`` per group of runs with the same skip set and routing arguments. When a
    group's batch fails, its runs are routed one by one, so an error reaches only the call whose
    query caused it."""
    out: dict[int, RoutingDecision | BaseException] = {}
    groups: dict[Any, tuple[frozenset[str], dict[str, Any], list[int]]] = {}
    try:
        for i, run in enumerate(runs):
            try:
                skip = run.skip()
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
            router = runs[rows[0]].d.router
            batch = dict(kwargs)  # a group shares its routing arguments, its task hint too
            task = batch.pop("task", None)
            if task is not None:
                batch["tasks"] = [task] * len(rows)
            try:
                decisions = router.route_batch([runs[i].text for i in rows], exclude=skip, **batch)
            except Exception:  # noqa: BLE001 - find who failed: route the group one by one
                for i in rows:
                    try:
                        out[i] = runs[i].start()
                    except Exception as exc:  # noqa: BLE001 - handed to that call
                        out[i] = exc
                continue
            for i, decision in zip(rows, decisions):
                out[i] = runs[i].begin(decision)
    except BaseException:
        for i, run in enumerate(runs):  # these do not start: give their probes back
            if i not in out:
                run.d.health.release(run)
        raise
    return [out[i] for i in range(len(runs))]


def discard(run: DispatchRun, decision: RoutingDecision) -> None:
    """A micro-batched call cancelled before its decision arrived: end what was started."""
    run.abandon(asyncio.CancelledError())


def _stopped(exc: BaseException) -> str:
    """The error recorded for an attempt that neither answered nor failed."""
    if isinstance(exc, GeneratorExit):
        return "GeneratorExit: the stream was closed before it ended"
    if type(exc).__name__ == "CancelledError":
        return "CancelledError: the call was cancelled"
    return f"{type(exc).__name__}: the call was interrupted"


class DispatchRun:
    """The attempts of one dispatched query (see the module docstring)."""

    def __init__(
        self,
        dispatcher: RunContext,
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
        self.tried: set[str] = set()  # distinct children attempted
        self.retries: dict[str, int] = {}  # same-child retries made, per child
        self.retry_llm: str | None = None  # the next attempt retries this child
        self.probed = False  # a probe of a child on probation was made: no second one
        self.probe = False  # the open attempt is such a probe
        self.cause: ChildCallError | None = None  # the last failure, redacted
        self.decision: RoutingDecision | None = None
        self.token: str | None = None
        self.started = 0.0
        self.reply: Reply | None = None
        self.chunks = 0
        self.stopped: BaseException | None = None  # set by abandon(): the caller has left
        self._lock = threading.Lock()  # begin() may run in a worker thread while abandon() runs

    # ------------------------------------------------------------------ starting an attempt
    def start(self) -> RoutingDecision:
        """Route the next attempt and start it (raises when no child may be tried)."""
        return self.begin(self.route())

    def route(self) -> RoutingDecision:
        router, health = self.d.router, self.d.health
        only = self.retry_llm or self.pin
        self.retry_llm = None
        try:
            if only is not None:
                return route_only(router, self.text, only, **self.route_kwargs)
            return router.route(self.text, exclude=self.skip(), **self.route_kwargs)
        except BaseException:
            health.release(self)  # the probes reserved while routing
            raise

    def skip(self, *, reserve: bool = True) -> frozenset[str]:
        """The children the next attempt must not be routed to: tried, excluded, cooling down,
        or on probation with their probe taken (reserving the free probes for this run). A run
        that failed and has only cooling children left may try one of them, once.

        Raises:
            AllCoolingDownError: every child left is cooling down.
            EmptyPoolError: every child was tried or excluded.
        """
        health = self.d.health
        pool = set(self.d.router.specs)
        hard = (self.tried | self.exclude) & pool
        left = pool - hard
        if not left:
            raise EmptyPoolError(
                f"No LLM left to try for this query: tried {sorted(self.tried)}, excluded "
                f"{sorted(self.exclude)}, pool {sorted(pool)}."
            )
        blocked = health.blocked(left, owner=self if reserve else None, probe=not self.probed)
        if blocked < left:
            return frozenset(hard | blocked)
        spare = None if self.probed or not self.attempts else health.last_resort(left)
        if spare is None:
            health.release(self)
            waits = {n: health.remaining(n) for n in left}
            raise self.cooling_error({n: (w or None) for n, w in waits.items()})
        self.probed = True  # its one try of a child that is not healthy
        return frozenset(pool - {spare})

    def begin(self, decision: RoutingDecision) -> RoutingDecision:
        """Start the attempt ``decision`` chose: latency tracking, the clock, a probe."""
        with self._lock:
            self.decision = decision
            self.token = self.d.router.tracker.start(decision.llm)
            self.started = self.d.clock()
            self.reply, self.chunks = None, 0
            self.probe = self.d.health.begin(decision.llm, self)
            self.probed = self.probed or self.probe
            self.tried.add(decision.llm)
            stopped = self.stopped
        if stopped is not None:  # the caller left while this was routed in a worker thread
            self.abandon(stopped)
        return decision

    def cooling_error(self, cooling: dict[str, float | None]) -> AllCoolingDownError:
        error = AllCoolingDownError(self.attempts, cooling)
        error.__cause__ = self.cause
        return error

    def attempt(self) -> AttemptEnd:
        """The ``with`` block around the open attempt's call to the child (see
        :class:`AttemptEnd`)."""
        return AttemptEnd(self)

    # ------------------------------------------------------------------ reading the answer
    def _read(self, value: Any, so_far: Reply | None) -> Reply:
        try:
            return self.d.reader(value, so_far)
        except Exception as exc:  # noqa: BLE001 - a junk answer is not the caller's fault
            llm = "?" if self.decision is None else self.decision.llm
            logger.warning("Could not read the answer of %s (%s).", llm, describe_error(exc))
            return so_far or Reply()

    def read(self, chunk: Any) -> None:
        """Fold a streamed chunk into the reply read so far."""
        self.reply = self._read(chunk, self.reply)
        self.chunks += 1

    def answered(self, value: Any) -> DispatchResult | Step:
        """The child answered ``value`` (a whole answer): validated, recorded and returned, or
        recorded as a failure when the validator rejects it."""
        self.reply = self._read(value, None)
        return self._judge(value)

    def finish_stream(self, on_done: Callable[[DispatchResult], None] | None) -> Step | None:
        """The child's stream ended: validate and record it, hand the result to ``on_done``."""
        if self.reply is None:
            self.reply = Reply("")
        done = self._judge(None)
        if isinstance(done, Step):
            return done
        if on_done is not None:
            on_done(done)
        return None

    def _judge(self, value: Any) -> DispatchResult | Step:
        reply = self.reply or Reply()
        reason = None if self.d.validator is None else rejection(self.d.validator, reply)
        if reason is not None:
            error = f"rejected by the validator: {reason}"
            decision, attempt = self._end(self._take(), error, ErrorKind.INVALID)
            self._record(attempt, self._usage(decision.llm))
            return self._next(attempt, ErrorKind.INVALID, None, None, final=self.chunks > 0)
        decision, attempt = self._end(self._take(), None, None)
        usage = self._usage(decision.llm)
        self._record(attempt, usage)
        return DispatchResult(decision, value, attempt.latency_s, list(self.attempts), usage)

    # ------------------------------------------------------------------ failures
    def fail(self, exc: Exception, *, final: bool = False) -> Step:
        """Record a failed attempt and say what comes next.

        The error a :class:`Step` carries is raised by the caller outside its ``except`` block,
        so the child's own exception (whose text may hold a key) is not chained; a redacted
        :class:`ChildCallError` with the child's traceback is its cause instead.
        """
        kind, wait = classify_error(exc), retry_after_s(exc)
        decision, attempt = self._end(self._take(), describe_error(exc), kind, wait)
        self._record(attempt, self._usage(decision.llm) if self.chunks else None)
        return self._next(attempt, kind, wait, exc, final=final)

    def _next(
        self,
        attempt: Attempt,
        kind: ErrorKind,
        retry_after: float | None,
        exc: BaseException | None,
        *,
        final: bool,
    ) -> Step:
        cause = ChildCallError(attempt.error, None if exc is None else type(exc))
        self.cause = cause if exc is None else cause.with_traceback(exc.__traceback__)
        llm, policy, health = attempt.llm, self.d.policy, self.d.health
        if final:
            return Step(error=self._failure())
        done = self.retries.get(llm, 0)
        may_retry = self.pin is not None or not self.probe  # a failed probe is not retried
        if may_retry and policy.retries(kind) and done < policy.retries_per_child:
            alone = self.pin is not None or not self._others_left(llm)
            if alone or health.remaining(llm) == 0.0:  # else: it cools down, others are free
                wait = max(policy.backoff(done, self.d.rng), retry_after or 0.0)
                if wait <= policy.max_wait_s:
                    self.retries[llm] = done + 1
                    self.retry_llm = llm
                    return Step(wait=wait)
        if self.pin is not None or len(self.tried) >= self._allowed():
            return Step(error=self._failure())
        return Step()

    def _allowed(self) -> int:
        """Distinct children a call may try: ``max_retries + 1``, at most what it may use."""
        return min(self.d.max_retries + 1, len(set(self.d.router.specs) - self.exclude))

    def _others_left(self, llm: str) -> bool:
        if len(self.tried) >= self._allowed():
            return False
        left = set(self.d.router.specs) - self.tried - self.exclude - {llm}
        return bool(left - self.d.health.blocked(left, probe=not self.probed))

    def _failure(self) -> AllCandidatesFailedError:
        failure = AllCandidatesFailedError(self.attempts)
        failure.__cause__ = self.cause
        return failure

    def abandon(self, exc: BaseException) -> None:
        """End an attempt nobody finished (a stream closed early, a cancelled call, a caller
        interrupted) and record it with what it used so far; no-op when none is open."""
        with self._lock:
            self.stopped = exc
        opened = self._take()
        if opened is None:
            self.d.health.release(self)
            return
        decision, attempt = self._end(opened, _stopped(exc), None, health=False)
        self._record(attempt, self._usage(decision.llm) if self.chunks else None)

    # ------------------------------------------------------------------ ending an attempt
    def _take(self) -> tuple[RoutingDecision, str] | None:
        """The open attempt's decision and tracker token, now closed; None when none is open."""
        with self._lock:
            decision, token = self.decision, self.token
            self.token = None
        return None if decision is None or token is None else (decision, token)

    def _end(
        self,
        opened: tuple[RoutingDecision, str] | None,
        error: str | None,
        kind: ErrorKind | None,
        retry_after: float | None = None,
        *,
        health: bool = True,
    ) -> tuple[RoutingDecision, Attempt]:
        """End the attempt ``opened`` (slot, health, probe) and return its decision and record."""
        if opened is None:
            raise RuntimeError("No attempt is open.")  # a bug in the dispatcher
        decision, token = opened
        try:
            self.d.router.tracker.finish(token, ok=error is None)
        finally:
            if health and kind is not None:
                self.d.health.failed(decision.llm, kind, retry_after)
            elif health:
                self.d.health.succeeded(decision.llm)
            self.d.health.release(self)
        latency = self.d.clock() - self.started
        label = "" if error is None else (CANCELLED if kind is None else kind.value)
        attempt = Attempt(decision.llm, decision.decision_id, latency, error or "", label)
        self.attempts.append(attempt)
        return decision, attempt

    def _usage(self, llm: str) -> CallUsage | None:
        return None if self.reply is None else price(self.d.router, llm, self.text, self.reply)

    def _record(self, attempt: Attempt, usage: CallUsage | None) -> None:
        """The one place an outcome reaches the router (a failure to record is logged: the
        caller's answer does not depend on it)."""
        try:
            self.d.router.record_outcome(
                attempt.decision_id,
                latency_s=attempt.latency_s,
                cost=None if usage is None else usage.cost,
                input_tokens=None if usage is None else usage.input_tokens,
                output_tokens=None if usage is None else usage.output_tokens,
                error=attempt.error or None,
            )
        except Exception:  # noqa: BLE001
            logger.exception("Could not record the outcome of decision %s.", attempt.decision_id)
