"""The scheduling queue: an active queue ordered by pod priority (then arrival), a backoff per pod, and
a parking lot for unschedulable pods that moves back to active when the cluster changes (and, as a
safety net, once a minute)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
UNSCHEDULABLE_FLUSH = 60.0


class SchedulingQueue:
    """Keys "namespace/name" of pods waiting for a node."""

    def __init__(self) -> None:
        self._active: list[tuple[int, int, str]] = []  # heap of (-priority, arrival, key)
        self._in_active: set[str] = set()
        self._priority: dict[str, int] = {}
        self._seq = itertools.count()
        self._unschedulable: dict[str, float] = {}  # key -> when it was parked
        self._attempts: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._wake = asyncio.Event()
        self.moves = 0

    def __len__(self) -> int:
        return len(self._active)

    @property
    def unschedulable_count(self) -> int:
        return len(self._unschedulable)

    def set_priority(self, key: str, priority: int) -> None:
        if priority:
            self._priority[key] = priority
        else:
            self._priority.pop(key, None)

    def add(self, key: str) -> None:
        """Queue a new or changed pending pod at once."""
        self._unschedulable.pop(key, None)
        self._cancel_timer(key)
        if key not in self._in_active:
            self._in_active.add(key)
            heapq.heappush(self._active, (-self._priority.get(key, 0), next(self._seq), key))
            self._wake.set()

    def remove(self, key: str) -> None:
        """Forget a pod (bound, deleted, or no longer ours)."""
        self._unschedulable.pop(key, None)
        self._attempts.pop(key, None)
        self._priority.pop(key, None)
        self._cancel_timer(key)
        if key in self._in_active:
            self._in_active.discard(key)
            # lazily skipped by pop()

    def _cancel_timer(self, key: str) -> None:
        t = self._timers.pop(key, None)
        if t is not None:
            t.cancel()

    def backoff(self, key: str) -> float:
        n = self._attempts.get(key, 0)
        return min(MAX_BACKOFF, INITIAL_BACKOFF * (2 ** max(0, n - 1))) if n else 0.0

    def add_backoff(self, key: str) -> None:
        """Retry after the pod's backoff (a failed bind, a store error)."""
        self._attempts[key] = self._attempts.get(key, 0) + 1
        self._later(key, self.backoff(key))

    def _later(self, key: str, delay: float) -> None:
        if key in self._timers or key in self._in_active:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.pop(key, None)
            self.add(key)

        self._timers[key] = loop.call_later(delay, fire)

    def park(self, key: str) -> None:
        """The pod fits nowhere now: wait for a cluster change."""
        self._attempts[key] = self._attempts.get(key, 0) + 1
        self._unschedulable[key] = time.monotonic()

    def done(self, key: str) -> None:
        """The pod was bound: reset its backoff."""
        self._attempts.pop(key, None)

    def move_all(self) -> None:
        """Something changed that may let parked pods fit: retry them (after their backoff)."""
        if not self._unschedulable:
            return
        self.moves += 1
        parked = list(self._unschedulable.items())
        self._unschedulable.clear()
        now = time.monotonic()
        for key, since in parked:
            self._later(key, max(0.0, since + self.backoff(key) - now))

    def flush_stale(self) -> None:
        """Retry pods parked for more than a minute (in case a change went unnoticed)."""
        now = time.monotonic()
        stale = [k for k, t in self._unschedulable.items() if now - t > UNSCHEDULABLE_FLUSH]
        for k in stale:
            self._unschedulable.pop(k, None)
            self.add(k)

    async def pop(self) -> str:
        while True:
            key = self.pop_nowait()
            if key is not None:
                return key
            self._wake.clear()
            await self._wake.wait()

    def pop_nowait(self) -> str | None:
        while self._active:
            _prio, _seq, key = heapq.heappop(self._active)
            if key in self._in_active:
                self._in_active.discard(key)
                return key
        return None
