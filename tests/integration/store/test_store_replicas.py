"""The store API through every replica of a 3-replica cluster: followers forward writes, read their
own and others' writes, and never hand out a ClusterIP twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import pytest

from pinnace.api import object_pb2, store_pb2, store_pb2_grpc
from tests.support.store import StoreCluster, start_store


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreCluster]:
    c = start_store(tmp_path_factory.mktemp("store3"), replicas=3)
    yield c
    c.stop()


def svc(name: str) -> object_pb2.Object:
    o = object_pb2.Object()
    o.service.metadata.name = name
    o.service.spec.ports.add(port=80)
    return o


def lease(name: str) -> object_pb2.Object:
    o = object_pb2.Object()
    o.lease.metadata.name = name
    o.lease.metadata.namespace = "default"
    return o


def test_write_anywhere_read_anywhere(cluster: StoreCluster) -> None:
    async def run() -> None:
        chans = [grpc.aio.insecure_channel(e) for e in cluster.endpoints]
        stubs = [store_pb2_grpc.StoreStub(c) for c in chans]
        try:
            for i in range(9):
                made = await stubs[i % 3].Create(store_pb2.CreateRequest(object=lease(f"l{i}")))
                # the next replica updates it at once with CAS on the revision it was created at
                upd = object_pb2.Object()
                upd.CopyFrom(made)
                upd.lease.spec.holder_identity = f"h{i}"
                done = await stubs[(i + 1) % 3].Update(store_pb2.UpdateRequest(object=upd))
                assert int(done.lease.metadata.resource_version) > int(made.lease.metadata.resource_version)
                # and a third one reads it linearizably
                got = await stubs[(i + 2) % 3].Get(
                    store_pb2.GetRequest(kind="lease", namespace="default", name=f"l{i}")
                )
                assert got == done
                # delete through a lagging replica with a precondition on the latest revision
                await stubs[(i + 2) % 3].Delete(
                    store_pb2.DeleteRequest(
                        kind="lease",
                        namespace="default",
                        name=f"l{i}",
                        preconditions=store_pb2.Preconditions(resource_version=done.lease.metadata.resource_version),
                    )
                )
        finally:
            for c in chans:
                await c.close()

    asyncio.run(run())


def test_cluster_ips_unique_across_replicas(cluster: StoreCluster) -> None:
    async def run() -> list[str]:
        chans = [grpc.aio.insecure_channel(e) for e in cluster.endpoints]
        stubs = [store_pb2_grpc.StoreStub(c) for c in chans]
        try:
            rs = await asyncio.gather(
                *(stubs[i % 3].Create(store_pb2.CreateRequest(object=svc(f"u{i}"))) for i in range(60))
            )
            return [r.service.spec.cluster_ip for r in rs]
        finally:
            for c in chans:
                await c.close()

    ips = asyncio.run(run())
    assert len(set(ips)) == 60


def test_watch_on_follower_sees_leader_writes(cluster: StoreCluster) -> None:
    leader = cluster.leader()
    follower = (leader + 1) % 3

    async def run() -> list[str]:
        async with (
            grpc.aio.insecure_channel(cluster.endpoints[leader]) as lc,
            grpc.aio.insecure_channel(cluster.endpoints[follower]) as fc,
        ):
            ls, fs = store_pb2_grpc.StoreStub(lc), store_pb2_grpc.StoreStub(fc)
            start = (await ls.List(store_pb2.ListRequest(kind="lease", namespace="default"))).revision
            for i in range(5):
                await ls.Create(store_pb2.CreateRequest(object=lease(f"w{i}")))
            names = []
            call = fs.Watch(store_pb2.WatchRequest(kind="lease", namespace="default", from_revision=start))
            async for ev in call:
                names.append(ev.object.lease.metadata.name)
                if len(names) == 5:
                    call.cancel()
                    break
            return names

    assert asyncio.run(run()) == [f"w{i}" for i in range(5)]
