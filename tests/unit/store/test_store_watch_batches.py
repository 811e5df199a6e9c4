"""Unit tests of the hub's batched streams (WatchBatches): everything ready at once in one message,
the same events as the unbatched stream, caps on events and bytes, bookmarks, fallback to disk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pinnace.api import store_pb2
from pinnace.api.object_pb2 import Object
from services.store import encoding as enc
from services.store import watch
from services.store.mvcc import MVCCStore
from services.store.watch import WatchHub

PREFIX = "/registry/pods/a/"


def put(name: str, ns: str = "a", pad: int = 0) -> tuple[str, bytes]:
    o = Object()
    o.pod.metadata.name = name
    if pad:
        o.pod.metadata.annotations["pad"] = "x" * pad
    return f"/registry/pods/{ns}/{name}", o.SerializeToString()


class World:
    def __init__(self, tmp: Path, window: int = 1000) -> None:
        self.store = MVCCStore(str(tmp), history_window=0)
        self.hub = WatchHub(self.store, window=window)
        self.hub.attach(asyncio.get_running_loop())
        self.index = 0

    def apply(self, *writes: tuple[str, bytes]) -> None:
        """One committed batch: each write its own entry (revision), published together."""
        entries = []
        for key, value in writes:
            self.index += 1
            entries.append((self.index, enc.encode_txn(enc.Txn([], [enc.Op(enc.OP_PUT, key, value)]))))
        self.store.apply_batch(entries)

    def batches(self, from_rev: int, **kw: object) -> AsyncIterator[bytes]:
        return self.hub.stream_batches("pods", PREFIX, PREFIX[:-1] + "0", from_rev, **kw)  # type: ignore[arg-type]

    def events(self, from_rev: int) -> AsyncIterator[bytes]:
        return self.hub.stream("pods", PREFIX, PREFIX[:-1] + "0", from_rev)


async def take(it: AsyncIterator[bytes], n: int) -> list[store_pb2.WatchEventBatch]:
    """The next n batches."""
    out = []
    async with asyncio.timeout(5):
        async for data in it:
            out.append(store_pb2.WatchEventBatch.FromString(data))
            if len(out) == n:
                break
    return out


def revisions(batches: list[store_pb2.WatchEventBatch]) -> list[list[int]]:
    return [[e.revision for e in b.events] for b in batches]


async def test_replay_is_one_message_then_live_burst_is_one_message(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.apply(*(put(f"p{i}") for i in range(5)))
    it = w.batches(2)
    assert revisions(await take(it, 1)) == [[3, 4, 5]]
    task = asyncio.create_task(take(it, 1))
    await asyncio.sleep(0.01)  # the watcher waits for the next append
    w.apply(put("p5"), put("other", ns="b"), put("p6"))
    assert revisions(await task) == [[6, 8]]
    await it.aclose()  # type: ignore[attr-defined]


async def test_same_events_as_unbatched_stream(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.apply(*(put(f"p{i}") for i in range(3)))
    w.apply(put("p1"))  # MODIFIED, carries prev_object
    (batch,) = await take(w.batches(1), 1)
    single: list[bytes] = []
    async with asyncio.timeout(5):
        async for data in w.events(1):
            single.append(data)
            if len(single) == 3:
                break
    assert list(batch.events) == [store_pb2.WatchEvent.FromString(data) for data in single]
    assert [e.type for e in batch.events] == [enc.ADDED, enc.ADDED, enc.MODIFIED]
    assert batch.events[2].prev_object.pod.metadata.name == "p1"


async def test_caps_split_a_wakeup_into_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "MAX_BATCH_EVENTS", 4)
    monkeypatch.setattr(watch, "MAX_BATCH_BYTES", 2500)
    w = World(tmp_path)
    task = asyncio.create_task(take(w.batches(0), 5))
    await asyncio.sleep(0.01)  # the watcher waits; then everything arrives in one wake-up
    small = [put(f"p{i}") for i in range(10)]  # the event cap applies
    big = [put(f"big{i}", pad=1000) for i in range(3)]  # about 1 KiB each: two fit in 2500 bytes
    w.apply(*small, *big, put("huge", pad=5000))  # over the cap on its own: sent alone
    got = await task
    assert revisions(got) == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13], [14]]
    assert all(b.ByteSize() <= 2500 for b in got[:-1]) and got[-1].ByteSize() > 5000


async def test_live_cap_and_fallback_to_disk_without_gaps(tmp_path: Path) -> None:
    w = World(tmp_path, window=10)
    it = w.batches(0)
    first = asyncio.create_task(take(it, 1))
    await asyncio.sleep(0.01)
    w.apply(put("p0"))
    for i in range(1, 100):  # far more than the in-memory window while the watcher is busy
        w.apply(put(f"p{i}"))
    got = [r for b in await first for r in (e.revision for e in b.events)]
    while len(got) < 100:
        got += [e.revision for b in await take(it, 1) for e in b.events]
    assert got == list(range(1, 101))


async def test_bookmark_batches(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.apply(put("x"))
    it = w.batches(0, bookmarks=True, bookmark_interval=0.05)
    got = await take(it, 2)
    assert [[(e.type, e.revision) for e in b.events] for b in got] == [[(enc.BOOKMARK, 1)]] * 2


async def test_watchers_at_one_position_share_the_message(tmp_path: Path) -> None:
    w = World(tmp_path)
    got: list[list[bytes]] = [[], [], []]

    async def watch(i: int, it: AsyncIterator[bytes]) -> None:
        async for data in it:
            got[i].append(data)
            return

    tasks = [asyncio.create_task(watch(0, w.batches(0))), asyncio.create_task(watch(1, w.batches(0)))]
    tasks.append(asyncio.create_task(watch(2, w.hub.stream_batches("pods", "/registry/pods/", "/registry/pods0", 0))))
    await asyncio.sleep(0.01)
    w.apply(put("p0"), put("other", ns="b"))
    await asyncio.gather(*tasks)
    assert got[0][0] is got[1][0]  # joined once for both watchers of the same range
    assert revisions([store_pb2.WatchEventBatch.FromString(g[0]) for g in got]) == [[1], [1], [1, 2]]
