"""Packing the txns proposed in one event-loop turn into one replicated command.

A `Store.Batch` of 32 creates proposes 32 txns within one turn of the loop. Proposed one by one,
each became a raft entry of its own: its own future, log row, replication record and apply step
on every replica. `ProposalPacker` collects what is proposed until the loop turn ends and
proposes it as one `CMD_MULTI` command (`encoding.encode_multi`); apply runs the txns in order,
each at its own revision, exactly as consecutive entries would, and answers each proposer with
its own result. A lone proposal goes out as it is, so a single write pays nothing extra.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from services.store import encoding as enc

# txns and bytes per packed command: a raft entry stays far below the peers' 64 MiB message
# limit (an object may be 1.5 MiB, or more with --max-object-bytes 0); a larger txn goes alone
MAX_PACKED = 64
MAX_PACKED_BYTES = 4 << 20

_Pending = tuple[bytes, asyncio.Future[bytes]]
_MULTI = bytes((enc.RES_MULTI,))


class ProposalPacker:
    """Wraps a replicator's `propose(command) -> result`; `propose` has the same contract."""

    def __init__(
        self,
        propose: Callable[[bytes], Awaitable[bytes]],
        max_packed: int = MAX_PACKED,
        max_bytes: int = MAX_PACKED_BYTES,
    ) -> None:
        self._propose = propose
        self.max_packed = max_packed
        self.max_bytes = max_bytes
        self._pending: list[_Pending] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.packed_commands = 0  # CMD_MULTI commands proposed (for tests and metrics)

    async def propose(self, command: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bytes] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)  # after the tasks already scheduled in this turn
        self._pending.append((command, fut))
        return await fut

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        group: list[_Pending] = []
        size = 0
        for item in pending:
            if group and (len(group) >= self.max_packed or size + len(item[0]) > self.max_bytes):
                self._start(group)
                group, size = [], 0
            group.append(item)
            size += len(item[0])
        if group:
            self._start(group)

    def _start(self, group: list[_Pending]) -> None:
        task = asyncio.get_running_loop().create_task(self._send(group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, group: list[_Pending]) -> None:
        live = [(c, f) for c, f in group if not f.done()]  # a proposer cancelled meanwhile drops out
        if not live:
            return
        try:
            if len(live) == 1:
                results = [await self._propose(live[0][0])]
            else:
                self.packed_commands += 1
                res = await self._propose(enc.encode_multi([c for c, _ in live]))
                # an error result (say, a malformed command) answers every txn of the pack
                results = enc.decode_multi_result(res) if res[:1] == _MULTI else [res] * len(live)
                if len(results) != len(live):
                    raise RuntimeError(f"packed command answered {len(results)} results for {len(live)} txns")
        except BaseException as e:  # every proposer hears the outcome, whatever it is
            for _, fut in live:
                if not fut.done():
                    fut.set_exception(e if isinstance(e, Exception) else asyncio.CancelledError())
            if not isinstance(e, Exception):
                raise
            return
        for (_, fut), res in zip(live, results, strict=True):
            if not fut.done():
                fut.set_result(res)
