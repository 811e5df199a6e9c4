"""LocalReplicator: a single replica with no peers; proposals are group-committed to the state machine.

Concurrent proposals queue up while the previous batch is being applied (and fsynced) on one
worker thread; each batch is one `apply_batch` call, so many writes share one fsync.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from services.store.replication import ReplicaStatus, StateMachine, Unavailable

MAX_BATCH = 1024


class LocalReplicator:
    """Replicator for a single replica: every proposal is committed as soon as it is durable."""

    def __init__(self, state_machine: StateMachine, node_id: int = 1) -> None:
        self._sm = state_machine
        self._id = node_id
        self._queue: list[tuple[bytes, asyncio.Future[bytes]]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="apply")
        self._index = state_machine.applied_index()
        self._stopping = False

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._index = self._sm.applied_index()
        self._task = asyncio.create_task(self._run(), name="local-replicator")

    async def stop(self) -> None:
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        self._executor.shutdown(wait=True)

    async def propose(self, data: bytes) -> bytes:
        if self._stopping or self._wake is None:
            raise Unavailable("store replica is not running")
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._queue.append((data, fut))
        self._wake.set()
        return await fut

    async def read_barrier(self) -> None:
        """Every acknowledged write is applied already on a single replica: nothing to wait for."""
        return None

    def status(self) -> ReplicaStatus:
        return ReplicaStatus(
            id=self._id,
            leader_id=self._id,
            term=1,
            commit_index=self._index,
            applied_index=self._sm.applied_index(),
            role="leader",
        )

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._stopping:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            batch = self._queue[:MAX_BATCH]
            del self._queue[:MAX_BATCH]
            first = self._index + 1
            entries = [(first + i, data) for i, (data, _) in enumerate(batch)]
            try:
                results = await loop.run_in_executor(self._executor, self._sm.apply_batch, entries)
            except Exception as e:  # disk trouble: fail this batch, keep serving
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(Unavailable(f"apply failed: {e}"))
                continue
            self._index = first + len(batch) - 1
            for (_, fut), res in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(res)
