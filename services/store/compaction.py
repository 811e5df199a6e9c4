"""Compaction of the watch history by age: the leader periodically proposes a Compact command for
the newest revision that is older than --history-age (count-based compaction happens inside apply).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

from services.store import encoding as enc
from services.store.mvcc import MVCCStore
from services.store.replication import Replicator, Unavailable


class AgeCompactor:
    """Samples (time, revision) and compacts history older than max_age seconds."""

    def __init__(self, store: MVCCStore, replicator: Replicator, max_age: float, interval: float = 30.0) -> None:
        self.store = store
        self.replicator = replicator
        self.max_age = max_age
        self.interval = interval
        self._samples: deque[tuple[float, int]] = deque()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.max_age > 0:
            self._task = asyncio.create_task(self._run(), name="age-compactor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def due(self, now: float) -> int:
        """Record a sample; the revision to compact to now (0 = nothing to do)."""
        self._samples.append((now, self.store.revision()))
        target = 0
        while self._samples and now - self._samples[0][0] >= self.max_age:
            target = self._samples.popleft()[1]
        return target if target > self.store.compact_revision() else 0

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            target = self.due(time.monotonic())
            if target and self.replicator.status().role == "leader":
                with contextlib.suppress(Unavailable):
                    await self.replicator.propose(enc.encode_compact(target))
