"""FakeStore's WatchBatches: the events of Watch, with everything ready at once in one message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from pinnace.api import pod_pb2, store_pb2, store_pb2_grpc
from pinnace.client.testing import FakeStore

WatchEvent = store_pb2.WatchEvent


def pod(name: str, **labels: str) -> pod_pb2.Pod:
    p = pod_pb2.Pod()
    p.metadata.name = name
    p.metadata.namespace = "default"
    p.metadata.labels.update(labels)
    return p


@pytest.fixture
async def stub(fake: tuple[FakeStore, str]) -> AsyncIterator[store_pb2_grpc.StoreStub]:
    async with grpc.aio.insecure_channel(fake[1]) as ch:
        yield store_pb2_grpc.StoreStub(ch)


async def take(call: Any, n: int) -> list[Any]:
    """The next n messages of a stream."""
    out = []
    async with asyncio.timeout(5):
        async for msg in call:
            out.append(msg)
            if len(out) == n:
                break
    return out


def revisions(batches: list[store_pb2.WatchEventBatch]) -> list[list[int]]:
    return [[e.revision for e in b.events] for b in batches]


async def test_history_then_live_bursts(fake: tuple[FakeStore, str], stub: store_pb2_grpc.StoreStub) -> None:
    store, _ = fake
    start = store.revision
    revs = [int(store.put(pod(f"h{i}")).pod.metadata.resource_version) for i in range(3)]
    call = stub.WatchBatches(store_pb2.WatchRequest(kind="pod", from_revision=start))
    assert revisions(await take(call, 1)) == [revs]
    pending = asyncio.create_task(take(call, 1))
    await asyncio.sleep(0.05)  # the watcher waits for the next event
    burst = [int(store.put(pod(f"l{i}")).pod.metadata.resource_version) for i in range(4)]
    assert revisions(await pending) == [burst]
    store.disconnect_watchers()
    assert await take(call, 1) == []  # the stream ended


async def test_same_events_as_watch(fake: tuple[FakeStore, str], stub: store_pb2_grpc.StoreStub) -> None:
    store, _ = fake
    start = store.revision
    store.put(pod("a", app="web"))
    store.put(pod("b", app="db"))
    store.put(pod("a", app="gone"))  # leaves the selection
    store.remove("pod", "default", "b")
    req = store_pb2.WatchRequest(kind="pod", from_revision=start, label_selector="app=web")
    batches = await take(stub.WatchBatches(req), 1)
    single = await take(stub.Watch(req), 2)
    assert list(batches[0].events) == single
    assert [(e.type, e.object.pod.metadata.name) for e in single] == [
        (WatchEvent.ADDED, "a"),
        (WatchEvent.DELETED, "a"),  # left the selection: the last state that matched, as the store sends
    ]
    assert single[1].object.pod.metadata.labels["app"] == "web"


async def test_typed_servicer_method(fake: tuple[FakeStore, str], stub: store_pb2_grpc.StoreStub) -> None:
    store, _ = fake
    start = store.revision
    store.put(pod("a"))
    store.remove("pod", "default", "a")
    req = store_pb2.WatchRequest(kind="pod", from_revision=start)
    typed = await take(store.WatchBatches(req, None), 1)
    assert typed == await take(stub.WatchBatches(req), 1)
    assert [e.type for e in typed[0].events] == [WatchEvent.ADDED, WatchEvent.DELETED]


async def test_compacted_out_of_range(fake: tuple[FakeStore, str], stub: store_pb2_grpc.StoreStub) -> None:
    store, _ = fake
    store.put(pod("a"))
    store.put(pod("b"))
    store.compact()
    with pytest.raises(grpc.aio.AioRpcError) as ei:
        await take(stub.WatchBatches(store_pb2.WatchRequest(kind="pod", from_revision=1)), 1)
    assert ei.value.code() == grpc.StatusCode.OUT_OF_RANGE


async def test_bookmarks(stub: store_pb2_grpc.StoreStub) -> None:
    batches = await take(stub.WatchBatches(store_pb2.WatchRequest(kind="pod", bookmarks=True)), 2)
    assert [[e.type for e in b.events] for b in batches] == [[WatchEvent.BOOKMARK]] * 2
