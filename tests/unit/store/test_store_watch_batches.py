"""Unit tests of the hub's batched streams (WatchBatches): everything ready at once in one message,
the same events as the unbatched stream, caps on events and bytes, bookmarks, fallback to disk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pinnace.api import store_pb2
from services.store import encoding as enc
from services.store import watch
from tests.unit.store.hub_world import World, pod_write


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
    w.apply(*(pod_write(f"p{i}") for i in range(5)))
    it = w.batches(2)
    assert revisions(await take(it, 1)) == [[3, 4, 5]]
    task = asyncio.create_task(take(it, 1))
    await asyncio.sleep(0.01)  # the watcher waits for the next append
    w.apply(pod_write("p5"), pod_write("other", ns="b"), pod_write("p6"))
    assert revisions(await task) == [[6, 8]]
    await it.aclose()  # type: ignore[attr-defined]


async def test_same_events_as_unbatched_stream(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.apply(*(pod_write(f"p{i}") for i in range(3)))
    w.apply(pod_write("p1"))  # MODIFIED, carries prev_object
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
    small = [pod_write(f"p{i}") for i in range(10)]  # the event cap applies
    big = [pod_write(f"big{i}", pad=1000) for i in range(3)]  # about 1 KiB each: two fit in 2500 bytes
    w.apply(*small, *big, pod_write("huge", pad=5000))  # over the cap on its own: sent alone
    got = await task
    assert revisions(got) == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13], [14]]
    assert all(b.ByteSize() <= 2500 for b in got[:-1]) and got[-1].ByteSize() > 5000


async def test_live_cap_and_fallback_to_disk_without_gaps(tmp_path: Path) -> None:
    w = World(tmp_path, window=10)
    it = w.batches(0)
    first = asyncio.create_task(take(it, 1))
    await asyncio.sleep(0.01)
    w.apply(pod_write("p0"))
    for i in range(1, 100):  # far more than the in-memory window while the watcher is busy
        w.apply(pod_write(f"p{i}"))
    got = [r for b in await first for r in (e.revision for e in b.events)]
    while len(got) < 100:
        got += [e.revision for b in await take(it, 1) for e in b.events]
    assert got == list(range(1, 101))


async def test_bookmark_batches(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.apply(pod_write("x"))
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
    every_pod = w.hub.messages("pods", "/registry/pods/", "/registry/pods0", 0, batched=True)
    tasks.append(asyncio.create_task(watch(2, every_pod)))
    await asyncio.sleep(0.01)
    w.apply(pod_write("p0"), pod_write("other", ns="b"))
    await asyncio.gather(*tasks)
    assert got[0][0] is got[1][0]  # joined once for both watchers of the same range
    assert revisions([store_pb2.WatchEventBatch.FromString(g[0]) for g in got]) == [[1], [1], [1, 2]]
