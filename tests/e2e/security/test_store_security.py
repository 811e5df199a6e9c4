"""Security of the store as a process: mutual TLS at the door, node authorization, the audit log,
key files on disk, and the request limits (object size, rate per client, watchers per client).

Real `python -m services.store` processes on loopback with certificates from pinnace.common.tls
in tmp dirs; no root needed. gRPC reports a failed TLS handshake as UNAVAILABLE (the request
never reaches the service), so "refused" below means: no answer from the service, ever.
"""

from __future__ import annotations

import asyncio
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from pinnace.api import object_pb2, store_pb2, store_pb2_grpc
from pinnace.cluster.pki import issue_all
from pinnace.common import tls
from tests.support.store import StoreCluster, start_store

GET_NS = store_pb2.GetRequest(kind="namespace", name="default")


def code_of(fn: object, *a: object, **kw: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as ei:
        fn(*a, **kw)  # type: ignore[operator]
    return ei.value.code(), ei.value.details() or ""


def node_obj(name: str) -> object_pb2.Object:
    o = object_pb2.Object()
    o.node.metadata.name = name
    o.node.metadata.labels["kubernetes.io/hostname"] = name
    return o


def lease_obj(name: str) -> object_pb2.Object:
    o = object_pb2.Object()
    o.lease.metadata.name = name
    o.lease.metadata.namespace = "kube-node-lease"
    o.lease.spec.holder_identity = name
    o.lease.spec.lease_duration_seconds = 40
    return o


def pod_obj(name: str, node: str = "") -> object_pb2.Object:
    o = object_pb2.Object()
    o.pod.metadata.name = name
    o.pod.metadata.namespace = "default"
    c = o.pod.spec.containers.add()
    c.name = "app"
    c.image = "busybox:1.36"
    o.pod.spec.node_name = node
    return o


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreCluster]:
    base = tmp_path_factory.mktemp("secure")
    c = start_store(
        base / "s",
        tls_dir=str(base / "pki"),
        max_object_bytes=65536,
        max_requests_per_second=20,
        request_burst=20,
        max_watchers_per_client=3,
    )
    try:
        for name in ("n1", "n2", "n3", "n4", "n5"):
            tls.issue(c.tls_dir, f"node-{name}", f"node:{name}")
        yield c
    finally:
        c.stop()


def stub_as(c: StoreCluster, cert: str) -> tuple[grpc.Channel, store_pb2_grpc.StoreStub]:
    ch = tls.secure_channel(c.endpoints[0], tls.load(c.tls_dir, cert))
    return ch, store_pb2_grpc.StoreStub(ch)


# ---------------------------------------------------------------------------- the door


def test_admin_is_served(secure: StoreCluster) -> None:
    ch, s = stub_as(secure, "admin")
    with ch:
        assert s.Get(GET_NS, timeout=10).namespace.metadata.name == "default"


def test_plaintext_client_is_refused(secure: StoreCluster) -> None:
    with grpc.insecure_channel(secure.endpoints[0]) as ch:
        code, _ = code_of(store_pb2_grpc.StoreStub(ch).Get, GET_NS, timeout=3)
    assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED), code


def test_client_without_certificate_is_refused(secure: StoreCluster) -> None:
    """TLS that trusts our CA but presents no client certificate."""
    creds = grpc.ssl_channel_credentials(root_certificates=(Path(secure.tls_dir) / "ca.crt").read_bytes())
    opts = [("grpc.ssl_target_name_override", tls.SERVER_NAME)]
    with grpc.secure_channel(secure.endpoints[0], creds, options=opts) as ch:
        code, _ = code_of(store_pb2_grpc.StoreStub(ch).Get, GET_NS, timeout=3)
    assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED), code


def test_certificate_from_another_ca_is_refused(secure: StoreCluster, tmp_path: Path) -> None:
    other = tmp_path / "other-pki"
    tls.ensure_cluster_pki(other)
    forged = tls.issue(other, "admin", "admin")  # CN "admin", but not our CA
    # Trust our CA for the server (so the failure is the server refusing the client's certificate).
    cfg = tls.TLSConfig(ca=(Path(secure.tls_dir) / "ca.crt").read_bytes(), cert=forged.cert, key=forged.key)
    with tls.secure_channel(secure.endpoints[0], cfg) as ch:
        code, _ = code_of(store_pb2_grpc.StoreStub(ch).Get, GET_NS, timeout=3)
    assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED), code


# ---------------------------------------------------------------------------- authorization


def test_node_may_change_only_its_own_objects_and_refusals_are_audited(secure: StoreCluster) -> None:
    ach, admin = stub_as(secure, "admin")
    nch, n1 = stub_as(secure, "node-n1")
    with ach, nch:
        # its own Node and Lease: create and update
        mine = n1.Create(store_pb2.CreateRequest(object=node_obj("n1")), timeout=10)
        mine.node.metadata.labels["extra"] = "yes"
        n1.Update(store_pb2.UpdateRequest(object=mine), timeout=10)
        mine = n1.Get(store_pb2.GetRequest(kind="node", name="n1"), timeout=10)
        mine.node.status.addresses.add(type="InternalIP", address="192.0.2.1")
        n1.UpdateStatus(store_pb2.UpdateRequest(object=mine), timeout=10)
        lease = n1.Create(store_pb2.CreateRequest(object=lease_obj("n1")), timeout=10)
        lease.lease.spec.lease_duration_seconds = 41
        n1.Update(store_pb2.UpdateRequest(object=lease), timeout=10)

        # another node's Node, Lease and pod status
        other = admin.Create(store_pb2.CreateRequest(object=node_obj("n2")), timeout=10)
        other.node.metadata.labels["hijacked"] = "yes"
        code, msg = code_of(n1.Update, store_pb2.UpdateRequest(object=other), timeout=10)
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert "node:n1" in msg and "n2" in msg and "own Node" in msg, msg
        code, msg = code_of(n1.UpdateStatus, store_pb2.UpdateRequest(object=other), timeout=10)
        assert code == grpc.StatusCode.PERMISSION_DENIED, msg
        code, msg = code_of(n1.Create, store_pb2.CreateRequest(object=node_obj("n9")), timeout=10)
        assert code == grpc.StatusCode.PERMISSION_DENIED, msg
        admin.Create(store_pb2.CreateRequest(object=lease_obj("n2")), timeout=10)
        code, msg = code_of(n1.Update, store_pb2.UpdateRequest(object=lease_obj("n2")), timeout=10)
        assert code == grpc.StatusCode.PERMISSION_DENIED and "own Lease" in msg, msg

        theirs = admin.Create(store_pb2.CreateRequest(object=pod_obj("on-n2", "n2")), timeout=10)
        theirs.pod.status.phase = "Failed"
        code, msg = code_of(n1.UpdateStatus, store_pb2.UpdateRequest(object=theirs), timeout=10)
        assert code == grpc.StatusCode.PERMISSION_DENIED and "not bound to n1" in msg, msg
        code, msg = code_of(n1.Delete, store_pb2.DeleteRequest(kind="pod", namespace="default", name="on-n2"))
        assert code == grpc.StatusCode.PERMISSION_DENIED, msg
        # ... while its own pod's status is fine
        ours = admin.Create(store_pb2.CreateRequest(object=pod_obj("on-n1", "n1")), timeout=10)
        ours.pod.status.phase = "Running"
        assert n1.UpdateStatus(store_pb2.UpdateRequest(object=ours), timeout=10).pod.status.phase == "Running"
        # the refused writes changed nothing
        got = admin.Get(store_pb2.GetRequest(kind="pod", namespace="default", name="on-n2"), timeout=10)
        assert got.pod.status.phase != "Failed"
        assert "hijacked" not in admin.Get(store_pb2.GetRequest(kind="node", name="n2")).node.metadata.labels

    # audited in the store's log: who, what, why
    deadline = time.monotonic() + 5
    while True:
        log = secure.log_path(0).read_text(errors="replace")
        lines = [ln for ln in log.splitlines() if "request refused" in ln and "PERMISSION_DENIED" in ln]
        if any("node:n1" in ln and "not bound to n1" in ln for ln in lines) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert any("node:n1" in ln and "own Node" in ln for ln in lines), log[-3000:]
    assert any("node:n1" in ln and "not bound to n1" in ln for ln in lines), log[-3000:]
    # nothing sensitive in the log: no key material
    assert "PRIVATE KEY" not in log


# ---------------------------------------------------------------------------- keys on disk


def test_pinnace_up_pki_keys_are_private(tmp_path: Path) -> None:
    d = tmp_path / "pki"
    issue_all(str(d), ["node1", "node2"])
    keys = sorted(d.glob("*.key"))
    names = {k.name for k in keys}
    assert {"ca.key", "store.key", "admin.key", "scheduler.key", "controllers.key", "node-node1.key"} <= names
    for k in keys:
        assert stat.S_IMODE(k.stat().st_mode) == 0o600, f"{k} is {oct(k.stat().st_mode)}"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for crt in d.glob("*.crt"):
        assert b"PRIVATE KEY" not in crt.read_bytes()
    # a re-run (e.g. a second `pinnace up`) keeps them private
    issue_all(str(d), ["node1", "node2", "node3"])
    for k in d.glob("*.key"):
        assert stat.S_IMODE(k.stat().st_mode) == 0o600


# ---------------------------------------------------------------------------- limits


def test_oversized_object_is_refused(secure: StoreCluster) -> None:
    ch, s = stub_as(secure, "admin")
    with ch:
        big = pod_obj("big")
        big.pod.metadata.annotations["blob"] = "x" * 100_000
        code, msg = code_of(s.Create, store_pb2.CreateRequest(object=big), timeout=10)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "--max-object-bytes" in msg and "65536" in msg, msg
        small = s.Create(store_pb2.CreateRequest(object=pod_obj("small")), timeout=10)
        small.pod.metadata.annotations["blob"] = "x" * 100_000
        code, msg = code_of(s.Update, store_pb2.UpdateRequest(object=small), timeout=10)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, msg
        code, _ = code_of(s.Get, store_pb2.GetRequest(kind="pod", namespace="default", name="big"), timeout=10)
        assert code == grpc.StatusCode.NOT_FOUND


def test_rate_limit_throttles_one_client_and_not_another(secure: StoreCluster) -> None:
    """node:n3 floods (far over 20 req/s); node:n4 keeps its own pace and is always served."""
    stop = threading.Event()
    counts = {"ok": 0, "exhausted": 0, "other": 0}
    messages: list[str] = []

    async def flood() -> None:
        ch = tls.secure_aio_channel(secure.endpoints[0], tls.load(secure.tls_dir, "node-n3"))
        s = store_pb2_grpc.StoreStub(ch)

        async def one() -> None:
            while not stop.is_set():
                try:
                    await s.Get(GET_NS, timeout=10)
                    counts["ok"] += 1
                except grpc.aio.AioRpcError as e:
                    if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        counts["exhausted"] += 1
                        if len(messages) < 3:
                            messages.append(e.details() or "")
                    else:
                        counts["other"] += 1

        try:
            await asyncio.gather(*(one() for _ in range(8)))
        finally:
            await ch.close()

    t = threading.Thread(target=lambda: asyncio.run(flood()))
    t.start()
    latencies: list[float] = []
    try:
        time.sleep(0.5)
        ch, good = stub_as(secure, "node-n4")
        with ch:
            for _ in range(15):  # 10/s, under the limit
                t0 = time.monotonic()
                assert good.Get(GET_NS, timeout=5).namespace.metadata.name == "default"
                latencies.append(time.monotonic() - t0)
                time.sleep(0.1)
    finally:
        stop.set()
        t.join(30)
    assert counts["exhausted"] > 10 * counts["ok"] / 20, counts  # most of the flood was refused
    assert counts["ok"] <= 20 + 20 * 4, counts  # burst + rate x seconds (with slack)
    assert counts["other"] == 0, counts
    assert "over the store's request rate limit" in messages[0] and "node:n3" in messages[0], messages
    assert max(latencies) < 1.0, latencies


def test_watchers_per_client(secure: StoreCluster) -> None:
    async def run() -> None:
        ch5 = tls.secure_aio_channel(secure.endpoints[0], tls.load(secure.tls_dir, "node-n5"))
        ach = tls.secure_aio_channel(secure.endpoints[0], tls.load(secure.tls_dir, "admin"))
        try:
            s5, admin = store_pb2_grpc.StoreStub(ch5), store_pb2_grpc.StoreStub(ach)
            calls = [s5.Watch(store_pb2.WatchRequest(kind="pod", bookmarks=True)) for _ in range(3)]
            for c in calls:
                await asyncio.wait_for(c.wait_for_connection(), 10)
            await asyncio.sleep(0.3)  # the server has registered them
            extra = s5.Watch(store_pb2.WatchRequest(kind="pod"))
            with pytest.raises(grpc.aio.AioRpcError) as ei:
                await asyncio.wait_for(extra.read(), 10)
            assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "--max-watchers-per-client" in (ei.value.details() or "")
            # another client is not affected
            other = admin.Watch(store_pb2.WatchRequest(kind="pod"))
            await admin.Create(store_pb2.CreateRequest(object=pod_obj("watched")), timeout=10)
            ev = await asyncio.wait_for(other.read(), 10)
            assert ev.object.pod.metadata.name == "watched"
            other.cancel()
            # closing one frees a slot
            calls[0].cancel()
            await asyncio.sleep(0.5)
            again = s5.Watch(store_pb2.WatchRequest(kind="pod"))
            await admin.Delete(store_pb2.DeleteRequest(kind="pod", namespace="default", name="watched"), timeout=10)
            ev = await asyncio.wait_for(again.read(), 10)
            assert ev.object.pod.metadata.name == "watched"
            for c in [*calls, again]:
                c.cancel()
        finally:
            await ch5.close()
            await ach.close()

    asyncio.run(run())


def test_rate_limit_without_tls_is_per_connection(tmp_path: Path) -> None:
    """Plaintext (no identities): the limit applies per connection; a second connection is served."""
    with start_store(tmp_path, max_requests_per_second=5, request_burst=5) as c:
        own = [("grpc.use_local_subchannel_pool", 1)]  # two real connections, not one shared
        with grpc.insecure_channel(c.endpoints[0], own) as a, grpc.insecure_channel(c.endpoints[0], own) as b:
            sa, sb = store_pb2_grpc.StoreStub(a), store_pb2_grpc.StoreStub(b)
            refused = 0
            for _ in range(30):
                try:
                    sa.Get(GET_NS, timeout=5)
                except grpc.RpcError as e:
                    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    refused += 1
            assert refused >= 20
            assert sb.Get(GET_NS, timeout=5).namespace.metadata.name == "default"


# ---------------------------------------------------------------------------- peer port


def test_raft_peer_port_refuses_plaintext(tmp_path: Path) -> None:
    with start_store(tmp_path / "s", replicas=3, tls_dir=str(tmp_path / "pki")) as c:
        for port in c.peer_ports:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                try:
                    grpc.channel_ready_future(ch).result(timeout=3)
                    accepted = True
                except grpc.FutureTimeoutError:
                    accepted = False
            assert not accepted, f"peer port {port} accepts plaintext connections"


def test_key_files_of_a_running_store_are_private(secure: StoreCluster) -> None:
    for k in Path(secure.tls_dir).glob("*.key"):
        assert stat.S_IMODE(os.stat(k).st_mode) == 0o600, k
