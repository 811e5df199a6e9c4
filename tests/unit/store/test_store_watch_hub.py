"""Unit tests of the watch hub: replay then live, falling behind the window, bookmarks, reset."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pinnace.api import store_pb2
from services.store import encoding as enc
from services.store.mvcc import Compacted
from services.store.watch import WatchClosed
from tests.unit.store.hub_world import World


async def take(it: AsyncIterator[bytes], n: int, timeout: float = 5) -> list[store_pb2.WatchEvent]:
    out = []
    async with asyncio.timeout(timeout):
        async for b in it:
            out.append(store_pb2.WatchEvent.FromString(b))
            if len(out) == n:
                break
    return out


async def test_replay_then_live(tmp_path: Path) -> None:
    w = World(tmp_path)
    for i in range(5):
        w.put(f"p{i}")
    it = w.events(2)
    first = await take(it, 3)
    assert [e.revision for e in first] == [3, 4, 5]
    w.put("p5")
    w.put("other", ns="b")
    w.put("p6")
    live = await take(it, 2)
    assert [e.revision for e in live] == [6, 8]
    await it.aclose()  # type: ignore[attr-defined]


async def test_from_now(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.put("old")
    it = w.events(0)
    task = asyncio.create_task(take(it, 1))
    await asyncio.sleep(0.05)
    w.put("new")
    (ev,) = await task
    assert ev.object.pod.metadata.name == "new"


async def test_slow_watcher_falls_back_to_disk_without_gaps(tmp_path: Path) -> None:
    w = World(tmp_path, window=10)
    it = w.events(0)
    got: list[int] = []
    first = asyncio.create_task(take(it, 1))
    await asyncio.sleep(0.01)
    for i in range(100):  # far more than the in-memory window while the watcher sleeps
        w.put(f"p{i}")
    got += [e.revision for e in await first]
    got += [e.revision for e in await take(it, 99)]
    assert got == list(range(1, 101))


async def test_bookmarks(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.put("x")
    it = w.events(0, bookmarks=True, bookmark_interval=0.05)
    evs = await take(it, 2, timeout=2)
    assert all(e.type == store_pb2.WatchEvent.BOOKMARK and e.revision == 1 for e in evs)


async def test_compacted_and_reset(tmp_path: Path) -> None:
    w = World(tmp_path)
    for i in range(3):
        w.put(f"p{i}")
    w.index += 1
    w.store.apply_batch([(w.index, enc.encode_compact(2))])
    with pytest.raises(Compacted):
        await take(w.events(1), 1)
    it = w.events(0)
    task = asyncio.create_task(take(it, 1))
    await asyncio.sleep(0.05)
    w.hub.reset()
    with pytest.raises(WatchClosed):
        await task
