"""WorkQueue and run_workers: client-go's rate-limited work queue for asyncio controllers.

- A key is queued at most once (``dirty`` set); a key being processed (between ``get`` and
  ``done``) is never handed to a second worker; if it is added meanwhile it is queued again
  when ``done`` is called.
- ``add_rate_limited`` re-adds after a per-key exponential backoff (``base * 2**failures``,
  capped); ``forget`` resets the key's failures; ``add_after`` adds after a delay.
- ``shutdown`` wakes every ``get`` with :class:`ShutDown`; later adds are ignored.

``run_workers(queue, reconcile, workers=N)`` runs N workers: ``reconcile(key)`` (sync or async)
succeeds -> forget; raises -> add_rate_limited; returns a number > 0 -> add_after that many seconds.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)

log = logging.getLogger("pinnace.client.workqueue")


class ShutDown(Exception):
    """Raised by WorkQueue.get after shutdown() once the queue is drained."""


class ItemExponentialBackoff(Generic[K]):
    """Per-key exponential failure backoff (client-go's ItemExponentialFailureRateLimiter)."""

    def __init__(self, base: float = 0.005, cap: float = 300.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        if n > 60:
            return self.cap
        return min(self.cap, self.base * (2**n))

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)


class WorkQueue(Generic[K]):
    """A de-duplicating, rate-limited FIFO of keys for asyncio workers."""

    def __init__(self, name: str = "", *, base_delay: float = 0.005, max_delay: float = 300.0) -> None:
        self.name = name
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._timer_due: dict[K, float] = {}
        self._limiter: ItemExponentialBackoff[K] = ItemExponentialBackoff(base_delay, max_delay)
        self._shutting_down = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def processing(self) -> frozenset[K]:
        return frozenset(self._processing)

    def _wake_one(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def add(self, key: K) -> None:
        """Queue ``key`` unless it is queued already; if it is being processed, queue it after done()."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake_one()

    def add_after(self, key: K, seconds: float) -> None:
        """Queue ``key`` after ``seconds``; an earlier pending add_after for the key wins."""
        if self._shutting_down:
            return
        if seconds <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + seconds
        if key in self._timers:
            if self._timer_due[key] <= due:
                return
            self._timers[key].cancel()

        def fire() -> None:
            self._timers.pop(key, None)
            self._timer_due.pop(key, None)
            self.add(key)

        self._timers[key] = loop.call_at(due, fire)
        self._timer_due[key] = due

    def add_rate_limited(self, key: K) -> None:
        """Queue ``key`` after its exponential backoff (grows with each call until forget)."""
        self.add_after(key, self._limiter.when(key))

    def forget(self, key: K) -> None:
        """Stop tracking ``key``'s failures (call after it was processed successfully)."""
        self._limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self._limiter.num_requeues(key)

    async def get(self) -> K:
        """The next key; it stays "processing" until done(key). Raises ShutDown when shut down and drained."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled() and self._queue:
                    self._wake_one()  # pass the wake-up on
                raise
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: K) -> None:
        """Mark ``key`` processed; if it was added meanwhile it is queued again now."""
        self._processing.discard(key)
        if key in self._dirty and not self._shutting_down:
            self._queue.append(key)
            self._wake_one()

    def shutdown(self) -> None:
        """Stop accepting keys, cancel delayed adds, and wake every waiting get()."""
        self._shutting_down = True
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self._timer_due.clear()
        self._queue.clear()
        self._dirty.clear()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)


Reconcile = Callable[[Any], "Awaitable[Any] | Any"]


async def _worker(queue: WorkQueue[Any], reconcile: Reconcile, name: str) -> None:
    while True:
        try:
            key = await queue.get()
        except ShutDown:
            return
        try:
            result = reconcile(key)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            log.warning(
                "reconcile %s failed (attempt %d), requeued with backoff: %s",
                key,
                queue.num_requeues(key) + 1,
                exc,
                exc_info=exc,
            )
            queue.add_rate_limited(key)
        else:
            queue.forget(key)
            if isinstance(result, (int, float)) and not isinstance(result, bool) and result > 0:
                queue.add_after(key, float(result))
        finally:
            queue.done(key)


async def run_workers(queue: WorkQueue[Any], reconcile: Reconcile, workers: int = 1, *, name: str = "") -> None:
    """Run ``workers`` workers until the queue is shut down (or this task is cancelled, which stops them)."""
    tasks = [
        asyncio.create_task(_worker(queue, reconcile, name), name=f"{name or queue.name}-worker-{i}")
        for i in range(workers)
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
