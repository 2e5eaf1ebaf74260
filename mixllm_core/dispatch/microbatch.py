"""`MicroBatcher`: the awaits of one event loop that wait at the same moment, processed together.

The :class:`~mixllm_core.Dispatcher` routes the first attempts of concurrent async calls with one
``route_batch`` (one encoder pass, one prediction call) through one of these per event loop. The
batch is whatever is waiting: a lone call is not delayed, and batches grow with the load.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["MicroBatcher"]

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class MicroBatcher(Generic[ItemT, ResultT]):
    """Collects the items submitted on one event loop and processes them in batches.

    ``submit`` queues an item and awaits its result. One drain task at a time takes everything
    queued, lets the loop run once more so items submitted in the same step join, and hands the
    lot to ``process`` in a worker thread; what arrives meanwhile forms the next batch.

    Args:
        process: Takes a batch, returns one result per item in order: a value, or the exception
            that item's caller should get (so one bad item does not fail the others).
        discard: Called with an item and its result when the caller gave up (was cancelled)
            before the result arrived, to undo what producing the result started.

    Example:
        >>> import asyncio
        >>> batcher = MicroBatcher(lambda items: [x * 10 for x in items])
        >>> async def main():
        ...     return await asyncio.gather(*(batcher.submit(x) for x in range(3)))
        >>> asyncio.run(main()), list(batcher.batch_sizes)
        ([0, 10, 20], [3])
    """

    def __init__(
        self,
        process: Callable[[list[ItemT]], Sequence[ResultT | BaseException]],
        *,
        discard: Callable[[ItemT, ResultT], None] | None = None,
    ) -> None:
        self.process = process
        self.discard = discard
        self.pending: list[tuple[ItemT, asyncio.Future[ResultT]]] = []
        self.task: asyncio.Task[None] | None = None
        self.batch_sizes: deque[int] = deque(maxlen=10_000)  # the latest, for benchmarks

    async def submit(self, item: ItemT) -> ResultT:
        """Queue ``item`` for the next batch and wait for its result."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[ResultT] = loop.create_future()
        self.pending.append((item, fut))
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            await self._process_pending()
        finally:  # a finished task keeps its loop alive: hold none while idle
            if self.task is asyncio.current_task():
                self.task = None

    async def _process_pending(self) -> None:
        await asyncio.sleep(0)  # items submitted in the same loop step join this batch
        while self.pending:
            batch, self.pending = self.pending, []
            self.batch_sizes.append(len(batch))
            try:
                results = await asyncio.to_thread(self.process, [item for item, _ in batch])
            except BaseException as exc:  # e.g. the loop shutting down: nobody gets a result
                for _, fut in batch + self.pending:
                    if isinstance(exc, asyncio.CancelledError):
                        fut.cancel()
                    elif not fut.done():
                        fut.set_exception(exc)
                self.pending = []
                raise
            for (item, fut), result in zip(batch, results):
                if isinstance(result, BaseException):
                    if not fut.done():
                        fut.set_exception(result)
                elif fut.done():  # the caller gave up (cancelled): undo what was started for it
                    if self.discard is not None:
                        self.discard(item, result)
                else:
                    fut.set_result(result)
