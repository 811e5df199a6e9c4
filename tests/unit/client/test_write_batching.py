"""WriteBatcher logic (a fake send function) and the SDK's batched writes against the FakeStore."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from pinnace.api import object_pb2, pod_pb2, store_pb2
from pinnace.client import AsyncClient, errors
from pinnace.client.batching import OpError, WriteBatcher, as_op
from pinnace.client.testing import FakeStore


def _create(name: str) -> store_pb2.BatchOp:
    o = object_pb2.Object()
    o.pod.metadata.name = name
    return store_pb2.BatchOp(create=store_pb2.CreateRequest(object=o))


class Recorder:
    """A send function that answers each op with its own object, or an error for names starting "bad"."""

    def __init__(self, delay: float = 0.01, fail: grpc.RpcError | None = None) -> None:
        self.sizes: list[int] = []
        self.delay = delay
        self.fail = fail

    async def __call__(self, req: store_pb2.BatchRequest, timeout: float) -> store_pb2.BatchResponse:
        self.sizes.append(len(req.ops))
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        resp = store_pb2.BatchResponse()
        for op in req.ops:
            r = resp.results.add()
            if op.create.object.pod.metadata.name.startswith("bad"):
                r.code = grpc.StatusCode.ALREADY_EXISTS.value[0]
                r.message = "exists"
            else:
                r.object.CopyFrom(op.create.object)
        return resp


async def test_a_lone_write_goes_alone_and_at_once() -> None:
    rec = Recorder()
    b = WriteBatcher(rec)
    got = await b.call(_create("a"), 1.0)
    assert got.pod.metadata.name == "a"
    assert rec.sizes == [1]


async def test_concurrent_writes_share_calls_and_keep_their_own_results() -> None:
    rec = Recorder()
    b = WriteBatcher(rec, max_inflight=2)
    names = [f"p{i}" if i % 7 else f"bad{i}" for i in range(200)]
    results = await asyncio.gather(*(b.call(_create(n), 1.0) for n in names), return_exceptions=True)
    for n, r in zip(names, results, strict=True):
        if n.startswith("bad"):
            assert isinstance(r, OpError) and r.code() == grpc.StatusCode.ALREADY_EXISTS
        else:
            assert isinstance(r, object_pb2.Object) and r.pod.metadata.name == n
    assert sum(rec.sizes) == 200
    assert len(rec.sizes) < 20  # coalesced: far fewer calls than writes


async def test_a_failed_call_fails_each_of_its_ops_with_that_error() -> None:
    err = OpError(grpc.StatusCode.UNAVAILABLE, "down")
    b = WriteBatcher(Recorder(fail=err))
    results = await asyncio.gather(*(b.call(_create(f"p{i}"), 1.0) for i in range(5)), return_exceptions=True)
    assert all(r is err for r in results)


def test_only_writes_become_ops() -> None:
    assert as_op("Create", store_pb2.CreateRequest()) is not None
    assert as_op("Delete", store_pb2.DeleteRequest()) is not None
    assert as_op("Get", store_pb2.GetRequest()) is None


async def test_sdk_writes_through_batch_on_the_fake_store(fake: tuple[FakeStore, str]) -> None:
    client = AsyncClient([fake[1]], timeout=2, retry_timeout=3)
    try:
        pods = [pod_pb2.Pod() for _ in range(50)]
        for i, p in enumerate(pods):
            p.metadata.name = f"web-{i}"
            p.metadata.namespace = "default"
            p.spec.containers.add(name="c", image="busybox")
        made = await asyncio.gather(*(client.create(p) for p in pods))
        assert sorted(m.metadata.name for m in made) == sorted(p.metadata.name for p in pods)
        with pytest.raises(errors.AlreadyExists):
            await client.create(pods[0])
        gone = await client.delete(pod_pb2.Pod, "web-1", "default")
        assert gone.metadata.name == "web-1"
        batcher = client._batchers[0]
        assert batcher.ops >= 52 and batcher.calls < batcher.ops
    finally:
        await client.close()


async def test_sdk_falls_back_to_one_call_per_write_and_per_event() -> None:
    """Against a store without Batch and WatchBatches, writes and watches still work (unary Create, Watch)."""
    store = FakeStore()
    server, endpoint = await store.serve(without=("Batch", "WatchBatches"))
    client = AsyncClient([endpoint], timeout=2, retry_timeout=3)
    try:
        rev = await client.current_revision(pod_pb2.Pod)
        seen: list[str] = []

        async def watch() -> None:
            async for ev in client.watch(pod_pb2.Pod, "default", from_revision=rev):
                seen.append(ev.object.metadata.name)
                if len(seen) == 3:
                    return

        watcher = asyncio.create_task(watch())
        for i in range(3):
            p = pod_pb2.Pod()
            p.metadata.name, p.metadata.namespace = f"old-{i}", "default"
            p.spec.containers.add(name="c", image="busybox")
            await client.create(p)
        await asyncio.wait_for(watcher, 5)
        assert seen == ["old-0", "old-1", "old-2"]
        assert not client.batch_writes and not client.batch_watches
    finally:
        await client.close()
        await server.stop(None)
