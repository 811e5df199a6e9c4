"""Unit tests of the watch hub: replay then live, falling behind the window, bookmarks, reset."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pinnace.api import store_pb2
from pinnace.api.object_pb2 import Object
from services.store import encoding as enc
from services.store.mvcc import Compacted, MVCCStore
from services.store.watch import WatchClosed, WatchHub


def obj(name: str) -> bytes:
    o = Object()
    o.pod.metadata.name = name
    return o.SerializeToString()


class World:
    def __init__(self, tmp: Path, window: int = 1000) -> None:
        self.store = MVCCStore(str(tmp), history_window=0)
        self.hub = WatchHub(self.store, window=window)
        self.hub.attach(asyncio.get_running_loop())
        self.index = 0

    def put(self, name: str, ns: str = "a") -> None:
        self.index += 1
        key = f"/registry/pods/{ns}/{name}"
        self.store.apply_batch([(self.index, enc.encode_txn(enc.Txn([], [enc.Op(enc.OP_PUT, key, obj(name))])))])

    def stream(self, start: str, from_rev: int, **kw: object) -> AsyncIterator[bytes]:
        return self.hub.stream("pods", start, start[:-1] + "0", from_rev, **kw)  # type: ignore[arg-type]


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
    it = w.stream("/registry/pods/a/", 2)
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
    it = w.stream("/registry/pods/a/", 0)
    task = asyncio.create_task(take(it, 1))
    await asyncio.sleep(0.05)
    w.put("new")
    (ev,) = await task
    assert ev.object.pod.metadata.name == "new"


async def test_slow_watcher_falls_back_to_disk_without_gaps(tmp_path: Path) -> None:
    w = World(tmp_path, window=10)
    it = w.stream("/registry/pods/a/", 0)
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
    it = w.stream("/registry/pods/a/", 0, bookmarks=True, bookmark_interval=0.05)
    evs = await take(it, 2, timeout=2)
    assert all(e.type == store_pb2.WatchEvent.BOOKMARK and e.revision == 1 for e in evs)


async def test_compacted_and_reset(tmp_path: Path) -> None:
    w = World(tmp_path)
    for i in range(3):
        w.put(f"p{i}")
    w.index += 1
    w.store.apply_batch([(w.index, enc.encode_compact(2))])
    with pytest.raises(Compacted):
        await take(w.stream("/registry/pods/a/", 1), 1)
    it = w.stream("/registry/pods/a/", 0)
    task = asyncio.create_task(take(it, 1))
    await asyncio.sleep(0.05)
    w.hub.reset()
    with pytest.raises(WatchClosed):
        await task
