"""Concurrent CAS updates, dry runs and historical lists over a real store process."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from pinnace.api import object_pb2, store_pb2, store_pb2_grpc
from tests.support.store import StoreCluster


def lease(name: str) -> object_pb2.Object:
    o = object_pb2.Object()
    o.lease.metadata.name = name
    o.lease.metadata.namespace = "default"
    o.lease.metadata.annotations["count"] = "0"
    return o


def test_concurrent_cas_increments_lose_nothing(cluster: StoreCluster) -> None:
    async def run() -> int:
        async with grpc.aio.insecure_channel(cluster.endpoints[0]) as ch:
            stub = store_pb2_grpc.StoreStub(ch)
            await stub.Create(store_pb2.CreateRequest(object=lease("counter")))
            conflicts = 0

            async def incr() -> None:
                nonlocal conflicts
                while True:
                    cur = await stub.Get(store_pb2.GetRequest(kind="lease", namespace="default", name="counter"))
                    cur.lease.metadata.annotations["count"] = str(int(cur.lease.metadata.annotations["count"]) + 1)
                    try:
                        await stub.Update(store_pb2.UpdateRequest(object=cur))
                        return
                    except grpc.aio.AioRpcError as e:
                        assert e.code() == grpc.StatusCode.ABORTED
                        conflicts += 1

            await asyncio.gather(*(incr() for _ in range(40)))
            final = await stub.Get(store_pb2.GetRequest(kind="lease", namespace="default", name="counter"))
            assert conflicts > 0
            return int(final.lease.metadata.annotations["count"])

    assert asyncio.run(run()) == 40


def test_dry_run_changes_nothing(cluster: StoreCluster) -> None:
    with grpc.insecure_channel(cluster.endpoints[0]) as ch:
        stub = store_pb2_grpc.StoreStub(ch)
        rev = stub.Status(store_pb2.StatusRequest()).revision
        r = stub.Create(store_pb2.CreateRequest(object=lease("dry"), dry_run=True))
        assert r.lease.metadata.uid
        with pytest.raises(grpc.RpcError) as ei:
            stub.Get(store_pb2.GetRequest(kind="lease", namespace="default", name="dry"))
        assert ei.value.code() == grpc.StatusCode.NOT_FOUND
        assert stub.Status(store_pb2.StatusRequest()).revision == rev


def test_list_at_old_revision(cluster: StoreCluster) -> None:
    with grpc.insecure_channel(cluster.endpoints[0]) as ch:
        stub = store_pb2_grpc.StoreStub(ch)
        a = stub.Create(store_pb2.CreateRequest(object=lease("hist-a")))
        rev = int(a.lease.metadata.resource_version)
        upd = object_pb2.Object()
        upd.CopyFrom(a)
        upd.lease.spec.holder_identity = "me"
        stub.Update(store_pb2.UpdateRequest(object=upd))
        stub.Create(store_pb2.CreateRequest(object=lease("hist-b")))
        old = stub.List(store_pb2.ListRequest(kind="lease", namespace="default", revision=rev))
        by_name = {i.lease.metadata.name: i for i in old.items}
        assert old.revision == rev and "hist-b" not in by_name
        assert by_name["hist-a"].lease.spec.holder_identity == ""
        with pytest.raises(grpc.RpcError) as ei:
            stub.List(store_pb2.ListRequest(kind="lease", revision=10**9))
        assert ei.value.code() == grpc.StatusCode.OUT_OF_RANGE
