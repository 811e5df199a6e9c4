"""Service ClusterIP / NodePort allocation over a real store process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
import pytest

from pinnace.api import object_pb2, store_pb2, store_pb2_grpc
from tests.support.store import StoreCluster, start_store

SEED = Path("/work/shared/fixtures/seed-manifests/fixed/service.json")


def svc(name: str, cluster_ip: str = "", type_: str = "", node_port: int = 0) -> object_pb2.Object:
    o = object_pb2.Object()
    o.service.metadata.name = name
    o.service.spec.selector["app"] = name
    p = o.service.spec.ports.add()
    p.port = 80
    p.node_port = node_port
    o.service.spec.cluster_ip = cluster_ip
    o.service.spec.type = type_
    return o


def test_defaults_and_allocation(stub: store_pb2_grpc.StoreStub) -> None:
    r = stub.Create(store_pb2.CreateRequest(object=svc("s1")))
    s = r.service.spec
    assert s.type == "ClusterIP" and s.session_affinity == "None"
    assert s.ports[0].protocol == "TCP" and s.ports[0].target_port.int_val == 80
    assert s.cluster_ip.startswith("10.96.") and list(s.cluster_ips) == [s.cluster_ip]
    ip = s.cluster_ip
    # update keeps the IP even when the client leaves it empty; changing it is refused
    r.service.spec.cluster_ip = ""
    r.service.metadata.labels["a"] = "b"
    u = stub.Update(store_pb2.UpdateRequest(object=r))
    assert u.service.spec.cluster_ip == ip
    u.service.spec.cluster_ip = "10.96.9.9"
    with pytest.raises(grpc.RpcError) as ei:
        stub.Update(store_pb2.UpdateRequest(object=u))
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "spec.clusterIP" in ei.value.details()


def test_requested_ip_taken_and_released(stub: store_pb2_grpc.StoreStub) -> None:
    stub.Create(store_pb2.CreateRequest(object=svc("fixed-a", "10.96.0.10")))
    with pytest.raises(grpc.RpcError) as ei:
        stub.Create(store_pb2.CreateRequest(object=svc("fixed-b", "10.96.0.10")))
    assert ei.value.code() == grpc.StatusCode.ALREADY_EXISTS and "10.96.0.10" in ei.value.details()
    stub.Delete(store_pb2.DeleteRequest(kind="service", namespace="default", name="fixed-a"))
    r = stub.Create(store_pb2.CreateRequest(object=svc("fixed-b", "10.96.0.10")))
    assert r.service.spec.cluster_ip == "10.96.0.10"


def test_headless_and_nodeport(stub: store_pb2_grpc.StoreStub) -> None:
    h = stub.Create(store_pb2.CreateRequest(object=svc("headless", "None")))
    assert h.service.spec.cluster_ip == "None"
    n = stub.Create(store_pb2.CreateRequest(object=svc("np", type_="NodePort")))
    assert 30000 <= n.service.spec.ports[0].node_port <= 32767
    with pytest.raises(grpc.RpcError) as ei:
        stub.Create(
            store_pb2.CreateRequest(object=svc("np2", type_="NodePort", node_port=n.service.spec.ports[0].node_port))
        )
    assert ei.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as ei:
        stub.Create(store_pb2.CreateRequest(object=svc("np3", type_="NodePort", node_port=80)))
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "nodePort" in ei.value.details()


def test_seed_fixture_cluster_ip_out_of_range(stub: store_pb2_grpc.StoreStub) -> None:
    data = json.loads(SEED.read_text())
    o = object_pb2.Object()
    o.service.metadata.name = data["metadata"]["name"]
    o.service.spec.cluster_ip = data["spec"]["clusterIP"]
    o.service.spec.type = data["spec"]["type"]
    o.service.spec.selector.update(data["spec"]["selector"])
    for p in data["spec"]["ports"]:
        sp = o.service.spec.ports.add()
        sp.port = p["port"]
        sp.protocol = p["protocol"]
        sp.target_port.int_val = p["targetPort"]
    with pytest.raises(grpc.RpcError) as ei:
        stub.Create(store_pb2.CreateRequest(object=o))
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    msg = ei.value.details()
    assert "spec.clusterIP" in msg and "10.0.171.239" in msg and "10.96.0.0/16" in msg


def test_concurrent_creates_never_share_an_ip(cluster: StoreCluster, tmp_path: Path) -> None:
    async def run() -> list[str]:
        async with grpc.aio.insecure_channel(cluster.endpoints[0]) as ch:
            stub = store_pb2_grpc.StoreStub(ch)
            rs = await asyncio.gather(*(stub.Create(store_pb2.CreateRequest(object=svc(f"c{i}"))) for i in range(150)))
            return [r.service.spec.cluster_ip for r in rs]

    ips = asyncio.run(run())
    assert len(set(ips)) == len(ips) == 150


def test_small_range_exhaustion_and_no_duplicates(tmp_path: Path) -> None:
    with start_store(tmp_path, service_cidr="10.200.0.0/28") as c:

        async def run() -> list[object]:
            async with grpc.aio.insecure_channel(c.endpoints[0]) as ch:
                stub = store_pb2_grpc.StoreStub(ch)
                return await asyncio.gather(
                    *(stub.Create(store_pb2.CreateRequest(object=svc(f"x{i}"))) for i in range(20)),
                    return_exceptions=True,
                )

        rs = asyncio.run(run())
        ok = [r.service.spec.cluster_ip for r in rs if isinstance(r, object_pb2.Object)]
        errs = [r for r in rs if isinstance(r, grpc.aio.AioRpcError)]
        assert len(ok) == 14 and len(set(ok)) == 14
        assert all(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in errs)
