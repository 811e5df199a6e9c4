"""Store.Batch over a real store process: each op behaves exactly as its own call, results in order,
and the SDK's concurrent writes share Batch calls."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from pinnace.api import object_pb2, pod_pb2, store_pb2, store_pb2_grpc
from pinnace.client import AsyncClient
from tests.support.store import StoreCluster


def pod(name: str, ns: str = "default") -> object_pb2.Object:
    o = object_pb2.Object()
    o.pod.metadata.name = name
    o.pod.metadata.namespace = ns
    o.pod.spec.containers.add(name="app", image="busybox:1.36")
    return o


def test_ops_succeed_and_fail_on_their_own_in_order(cluster: StoreCluster) -> None:
    with grpc.insecure_channel(cluster.endpoints[0]) as ch:
        stub = store_pb2_grpc.StoreStub(ch)
        first = stub.Create(store_pb2.CreateRequest(object=pod("b-existing")))
        stale = object_pb2.Object()
        stale.CopyFrom(first)
        stale.pod.metadata.labels["x"] = "1"
        stale.pod.metadata.resource_version = "1"  # long gone: a CAS conflict
        bad = pod("B_Invalid")
        ops = [
            store_pb2.BatchOp(create=store_pb2.CreateRequest(object=pod("b-new"))),
            store_pb2.BatchOp(create=store_pb2.CreateRequest(object=pod("b-existing"))),
            store_pb2.BatchOp(create=store_pb2.CreateRequest(object=bad)),
            store_pb2.BatchOp(update=store_pb2.UpdateRequest(object=stale)),
            store_pb2.BatchOp(delete=store_pb2.DeleteRequest(kind="pod", namespace="default", name="b-missing")),
            store_pb2.BatchOp(create=store_pb2.CreateRequest(object=pod("b-other", ns="no-such-ns"))),
            store_pb2.BatchOp(),
        ]
        resp = stub.Batch(store_pb2.BatchRequest(ops=ops))
        codes = [
            grpc.StatusCode.OK if r.code == 0 else next(c for c in grpc.StatusCode if c.value[0] == r.code)
            for r in resp.results
        ]
        assert codes == [
            grpc.StatusCode.OK,
            grpc.StatusCode.ALREADY_EXISTS,
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.ABORTED,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.INVALID_ARGUMENT,
        ]
        made = resp.results[0].object.pod.metadata
        assert (
            made.name == "b-new" and made.uid and int(made.resource_version) > int(first.pod.metadata.resource_version)
        )
        assert "metadata.name" in resp.results[2].message
        # the failed ops changed nothing; the successful one is stored exactly as returned
        got = stub.Get(store_pb2.GetRequest(kind="pod", namespace="default", name="b-new"))
        assert got == resp.results[0].object
        existing = stub.Get(store_pb2.GetRequest(kind="pod", namespace="default", name="b-existing"))
        assert existing == first
        with pytest.raises(grpc.RpcError) as ei:
            stub.Get(store_pb2.GetRequest(kind="pod", namespace="default", name="B_Invalid"))
        assert ei.value.code() == grpc.StatusCode.NOT_FOUND


def test_too_many_ops_are_refused_whole(cluster: StoreCluster) -> None:
    with grpc.insecure_channel(cluster.endpoints[0]) as ch:
        stub = store_pb2_grpc.StoreStub(ch)
        ops = [store_pb2.BatchOp(create=store_pb2.CreateRequest(object=pod(f"many-{i}"))) for i in range(1001)]
        with pytest.raises(grpc.RpcError) as ei:
            stub.Batch(store_pb2.BatchRequest(ops=ops))
        assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.RpcError):
            stub.Get(store_pb2.GetRequest(kind="pod", namespace="default", name="many-0"))


async def test_sdk_coalesces_concurrent_writes(cluster: StoreCluster) -> None:
    client = AsyncClient(cluster.endpoints, timeout=10, retry_timeout=10)
    try:
        pods = []
        for i in range(300):
            p = pod_pb2.Pod()
            p.metadata.name = f"co-{i}"
            p.metadata.namespace = "default"
            p.spec.containers.add(name="app", image="busybox:1.36")
            pods.append(p)
        made = await asyncio.gather(*(client.create(p) for p in pods))
        assert len({m.metadata.uid for m in made}) == 300
        revs = sorted(int(m.metadata.resource_version) for m in made)
        assert len(set(revs)) == 300  # one revision per write, as with single calls
        listed = await client.list(pod_pb2.Pod, "default", label_selector="")
        assert {p.metadata.name for p in pods} <= {p.metadata.name for p in listed.items}
        b = client._batchers[0]
        assert b.ops >= 300 and b.calls < b.ops / 4
        # updates and deletes go the same way
        for m in made[:50]:
            m.metadata.labels["tier"] = "web"
        updated = await asyncio.gather(*(client.update(m) for m in made[:50]))
        assert all(u.metadata.labels["tier"] == "web" for u in updated)
        await asyncio.gather(*(client.delete(pod_pb2.Pod, m.metadata.name, "default") for m in made))
        left = await client.list(pod_pb2.Pod, "default")
        assert not any(p.metadata.name.startswith("co-") for p in left.items)
    finally:
        await client.close()
