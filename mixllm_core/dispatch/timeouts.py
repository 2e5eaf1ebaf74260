"""Per-attempt timeouts: the caller gets control back when a child does not answer in time.

Async calls and stream chunks are awaited under ``asyncio.timeout`` (``asyncio.wait_for`` on
Python 3.10): the child's coroutine is cancelled when the time is up. A sync child cannot be
interrupted, so :class:`WorkerThreads` runs it on a daemon worker thread (with the caller's
context variables) while the caller waits at most ``timeout`` seconds for the result; on a
timeout the caller moves on, and whatever the abandoned worker returns later is discarded. Idle
workers are reused and leave after a while; a worker stuck in a hung child never keeps the
interpreter from exiting.

Every function here raises the builtin :class:`TimeoutError` with a message that says what did
not arrive in time, and does nothing extra when ``timeout`` is None.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import queue
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

__all__ = ["END", "WorkerThreads", "anext_within", "await_within", "call_within", "next_within"]

T = TypeVar("T")

#: What the ``next`` functions return when the iterator is exhausted.
END: Any = object()


class WorkerThreads:
    """Daemon threads that run calls whose caller may stop waiting (thread-safe).

    Args:
        idle_s: Seconds an idle worker waits for work before it leaves.

    Example:
        >>> workers = WorkerThreads()
        >>> workers.submit(lambda: 6 * 7).result(timeout=5)
        42
    """

    def __init__(self, idle_s: float = 30.0) -> None:
        self.idle_s = idle_s
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]]]
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self.threads = 0  #: workers alive now (busy, idle, or stuck in a hung call)

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Run ``fn()`` on a worker; its future holds the result or the exception."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._lock:
            if self._idle:
                self._idle -= 1  # that worker's next job is this one
            else:
                self.threads += 1
                threading.Thread(target=self._work, name="mixllm-child", daemon=True).start()
        self._jobs.put((future, fn))
        return future

    def _work(self) -> None:
        while True:
            try:
                future, fn = self._jobs.get(timeout=self.idle_s)
            except queue.Empty:
                with self._lock:
                    if self._idle:  # idle and nothing handed to this worker: leave
                        self._idle -= 1
                        self.threads -= 1
                        return
                continue  # a job was promised to an idle worker and is on its way
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    future.set_exception(exc)
            del future, fn  # drop the answer of an abandoned call now
            with self._lock:
                self._idle += 1


def call_within(
    workers: WorkerThreads,
    fn: Callable[[], T],
    timeout: float | None,
    what: str,
    context: contextvars.Context | None = None,
) -> T:
    """``fn()``; with a ``timeout``, run on a worker and abandoned after ``timeout`` seconds.

    The worker runs ``fn`` in ``context`` (default: a copy of the caller's context variables).

    Raises:
        TimeoutError: ``"<what> within <timeout> s"`` when ``fn`` did not return in time.
    """
    if timeout is None:
        return fn()
    ctx = contextvars.copy_context() if context is None else context
    return _wait(workers.submit(lambda: ctx.run(fn)), timeout, what)


def next_within(
    workers: WorkerThreads,
    iterator: Iterator[T],
    context: contextvars.Context | None,
    timeout: float | None,
    what: str,
) -> T:
    """The next item of ``iterator`` (or :data:`END`), waiting at most ``timeout`` seconds.

    Every item of one iterator must be fetched with the same ``context`` (a generator that sets
    context variables resets them in the context it set them in).
    """
    if timeout is None or context is None:
        return next(iterator, END)
    ctx = context
    return _wait(workers.submit(lambda: ctx.run(next, iterator, END)), timeout, what)


def _wait(future: concurrent.futures.Future[T], timeout: float, what: str) -> T:
    try:
        return future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        if not future.done():  # the worker's own TimeoutError would have made it done
            future.cancel()  # only a job no worker picked up yet can still be cancelled
            raise TimeoutError(f"{what} within {timeout:g} s") from None
        raise


async def await_within(awaitable: Awaitable[T], timeout: float | None, what: str) -> T:
    """``await awaitable``, cancelled after ``timeout`` seconds (None: no limit).

    Raises:
        TimeoutError: ``"<what> within <timeout> s"`` when it did not finish in time (a
            TimeoutError raised by the awaitable itself passes unchanged).
    """
    if timeout is None:
        return await awaitable
    if sys.version_info >= (3, 11):
        limit = asyncio.timeout(timeout)
        try:
            async with limit:
                return await awaitable
        except TimeoutError:
            if limit.expired():
                raise TimeoutError(f"{what} within {timeout:g} s") from None
            raise
    try:  # pragma: no cover - Python 3.10
        return await asyncio.wait_for(awaitable, timeout)
    except asyncio.TimeoutError:  # pragma: no cover
        raise TimeoutError(f"{what} within {timeout:g} s") from None


async def anext_within(iterator: AsyncIterator[T], timeout: float | None, what: str) -> T:
    """The next item of ``iterator`` (or :data:`END`), waiting at most ``timeout`` seconds."""
    try:
        return await await_within(iterator.__anext__(), timeout, what)
    except StopAsyncIteration:
        return END  # type: ignore[no-any-return]
