"""Snapshots of the real store under write load (3 replica processes): each snapshot file is the
state at exactly its index although writes went on while it was copied, and a replica that was
down while the log was compacted past it catches up from one (InstallSnapshot) with every write."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import grpc
import pytest

from pinnace.api import object_pb2, store_pb2, store_pb2_grpc
from pinnace.client import AsyncClient
from tests.support.store import StoreCluster, start_store
from tests.support.waiting import eventually

WRITES = 3_000


def lease(name: str) -> object_pb2.Object:
    o = object_pb2.Object()
    o.lease.metadata.name = name
    o.lease.metadata.namespace = "default"
    o.lease.spec.holder_identity = "x" * 200
    return o


async def write_leases(endpoint: str, n: int, writers: int = 32) -> None:
    async with AsyncClient([endpoint]) as client:
        names = iter(range(n))

        async def writer() -> None:
            for i in names:
                await client.create(lease(f"l{i}"))

        await asyncio.gather(*(writer() for _ in range(writers)))


def snapshot_files(cluster: StoreCluster, i: int) -> list[Path]:
    return sorted((cluster.data_dirs[i] / "raft-snap").glob("snap-*.db"))


def check_snapshot(path: Path, copy_to: Path) -> int:
    """The snapshot holds the state at its index: applied index = the file's, nothing newer in it."""
    shutil.copyfile(path, copy_to)  # the replica may remove the original once a newer one exists
    index = int(path.name.split("-")[1])
    db = sqlite3.connect(copy_to)
    try:
        meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
        newest_kv = db.execute("SELECT max(mod_revision) FROM kv").fetchone()[0]
        newest_event = db.execute("SELECT max(seq) >> 8 FROM history").fetchone()[0]
    finally:
        db.close()
    assert meta["applied"] == index, f"{path.name}: applied index {meta['applied']}"
    assert newest_kv == meta["revision"] and newest_event in (None, meta["revision"]), (
        f"{path.name}: revision {meta['revision']} but rows up to {newest_kv} / events up to {newest_event}"
    )
    return index


def test_snapshots_under_load_and_catch_up_from_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # concurrent creates replicate packed, ~16 to an entry: a snapshot every ~300 writes
    monkeypatch.setenv("PINNACE_RAFT_SNAPSHOT_ENTRIES", "20")
    monkeypatch.setenv("PINNACE_RAFT_KEEP_ENTRIES", "8")
    # a slow copy: the writes applied meanwhile must not leak into the snapshot, nor wait for it
    monkeypatch.setenv("PINNACE_RAFT_FAILPOINTS", "before_snapshot_copy=sleep(0.2)")
    with start_store(tmp_path / "store", replicas=3) as cluster:
        lead = cluster.leader()
        down = (lead + 1) % 3
        cluster.kill(down)

        checked: set[int] = set()

        async def load_and_watch_snapshots() -> None:
            task = asyncio.create_task(write_leases(cluster.endpoints[lead], WRITES))
            while not task.done():  # check snapshot files while the writes go on
                for f in snapshot_files(cluster, lead):
                    if int(f.name.split("-")[1]) not in checked:
                        try:
                            checked.add(check_snapshot(f, tmp_path / "copy.db"))
                        except FileNotFoundError:
                            pass  # replaced by a newer one meanwhile
                await asyncio.sleep(0.05)
            await task

        asyncio.run(load_and_watch_snapshots())

        def several_snapshots() -> bool:  # the last copy may still be running when the writes end
            for f in snapshot_files(cluster, lead):
                checked.add(check_snapshot(f, tmp_path / "copy.db"))
            return len(checked) >= 2

        eventually(several_snapshots, 10, what=f"several snapshots taken during {WRITES} writes", interval=0.1)

        cluster.restart(down)
        lead_applied = cluster.status(lead).applied_index
        assert lead_applied < WRITES // 4, f"{WRITES} concurrent creates took {lead_applied} raft entries: not packed"
        eventually(
            lambda: cluster.status(down).applied_index >= lead_applied, 30, what="the restarted replica catches up"
        )
        assert "installing snapshot" in cluster.tail(down, lines=400)
        with grpc.insecure_channel(cluster.endpoints[down]) as ch:
            listed = store_pb2_grpc.StoreStub(ch).List(
                store_pb2.ListRequest(kind="lease", namespace="default", serializable=True)
            )
        names = {o.lease.metadata.name for o in listed.items}
        assert names == {f"l{i}" for i in range(WRITES)}
