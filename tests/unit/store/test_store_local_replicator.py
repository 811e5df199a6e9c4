"""LocalReplicator: concurrent proposals are group-committed, results go back to their proposers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.store import encoding as enc
from services.store.local_replicator import LocalReplicator
from services.store.mvcc import MVCCStore
from services.store.replication import Unavailable


class CountingStore(MVCCStore):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.batches: list[int] = []

    def apply_batch(self, entries: list[tuple[int, bytes]]) -> list[bytes]:
        self.batches.append(len(entries))
        return super().apply_batch(entries)


def put(key: str) -> bytes:
    return enc.encode_txn(enc.Txn([enc.Compare(key, enc.CMP_NOT_EXISTS)], [enc.Op(enc.OP_PUT, key, b"v")]))


async def test_group_commit_and_results(tmp_path: Path) -> None:
    store = CountingStore(str(tmp_path))
    rep = LocalReplicator(store)
    await rep.start()
    res = await asyncio.gather(*(rep.propose(put(f"/k/{i % 50}")) for i in range(100)))
    decoded = [enc.decode_result(r) for r in res]
    assert sum(r.ok for r in decoded) == 50  # the second put of each key fails its compare
    assert sorted(r.revision for r in decoded if r.ok) == list(range(1, 51))
    assert len(store.batches) < 100  # proposals shared batches
    assert rep.status().applied_index == 100 and rep.status().role == "leader"
    await rep.read_barrier()
    await rep.stop()
    with pytest.raises(Unavailable):
        await rep.propose(put("/k/x"))


async def test_restart_continues_index(tmp_path: Path) -> None:
    store = MVCCStore(str(tmp_path))
    rep = LocalReplicator(store)
    await rep.start()
    await rep.propose(put("/a"))
    await rep.stop()
    store.close()
    store2 = MVCCStore(str(tmp_path))
    rep2 = LocalReplicator(store2)
    await rep2.start()
    r = enc.decode_result(await rep2.propose(put("/b")))
    assert r.ok and r.revision == 2 and store2.applied_index() == 2
    await rep2.stop()
