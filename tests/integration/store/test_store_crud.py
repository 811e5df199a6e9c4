"""Store over a real process: CRUD, CAS, UpdateStatus isolation, graceful delete, finalizers, restart."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from pinnace.api import object_pb2, store_pb2, store_pb2_grpc
from tests.support.store import start_store


def pod(name: str, ns: str = "default", node: str = "", labels: dict[str, str] | None = None) -> object_pb2.Object:
    o = object_pb2.Object()
    o.pod.metadata.name = name
    o.pod.metadata.namespace = ns
    o.pod.metadata.labels.update(labels or {})
    c = o.pod.spec.containers.add()
    c.name = "app"
    c.image = "busybox:1.36"
    o.pod.spec.node_name = node
    return o


def create(stub: store_pb2_grpc.StoreStub, o: object_pb2.Object) -> object_pb2.Object:
    r: object_pb2.Object = stub.Create(store_pb2.CreateRequest(object=o))
    return r


def code_of(fn: object, *a: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as ei:
        fn(*a)  # type: ignore[operator]
    return ei.value.code(), ei.value.details()


def test_bootstrap_namespaces(stub: store_pb2_grpc.StoreStub) -> None:
    r = stub.List(store_pb2.ListRequest(kind="namespace"))
    names = {i.namespace.metadata.name for i in r.items}
    assert {"default", "kube-system", "kube-node-lease", "pinnace-system"} <= names
    assert r.revision >= 4


def test_create_get_defaults(stub: store_pb2_grpc.StoreStub) -> None:
    got = create(stub, pod("crud-a"))
    m = got.pod.metadata
    assert m.uid and m.generation == 1 and m.creation_timestamp.seconds > 0
    assert int(m.resource_version) > 0
    assert got.pod.spec.restart_policy == "Always" and got.pod.spec.dns_policy == "ClusterFirst"
    assert got.pod.status.phase == "Pending"
    again = stub.Get(store_pb2.GetRequest(kind="pod", namespace="default", name="crud-a"))
    assert again == got
    code, msg = code_of(stub.Create, store_pb2.CreateRequest(object=pod("crud-a")))
    assert code == grpc.StatusCode.ALREADY_EXISTS and "crud-a" in msg
    code, msg = code_of(stub.Get, store_pb2.GetRequest(kind="pod", namespace="default", name="nope"))
    assert code == grpc.StatusCode.NOT_FOUND and "nope" in msg


def test_namespace_must_exist(stub: store_pb2_grpc.StoreStub) -> None:
    code, msg = code_of(stub.Create, store_pb2.CreateRequest(object=pod("x", ns="missing-ns")))
    assert code == grpc.StatusCode.NOT_FOUND and "missing-ns" in msg


def test_invalid_name_has_field_path(stub: store_pb2_grpc.StoreStub) -> None:
    code, msg = code_of(stub.Create, store_pb2.CreateRequest(object=pod("Bad_Name")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "metadata.name" in msg


def test_generate_name(stub: store_pb2_grpc.StoreStub) -> None:
    o = pod("")
    o.pod.metadata.generate_name = "gen-"
    a, b = create(stub, o), create(stub, o)
    assert a.pod.metadata.name.startswith("gen-") and a.pod.metadata.name != b.pod.metadata.name


def test_update_cas_and_generation(stub: store_pb2_grpc.StoreStub) -> None:
    got = create(stub, pod("cas-a"))
    upd = object_pb2.Object()
    upd.CopyFrom(got)
    upd.pod.spec.containers[0].image = "busybox:1.37"
    upd.pod.status.phase = "Running"  # ignored by Update
    new = stub.Update(store_pb2.UpdateRequest(object=upd))
    assert new.pod.metadata.generation == 2
    assert new.pod.status.phase == "Pending"
    assert int(new.pod.metadata.resource_version) > int(got.pod.metadata.resource_version)
    # stale resource_version -> ABORTED
    code, msg = code_of(stub.Update, store_pb2.UpdateRequest(object=upd))
    assert code == grpc.StatusCode.ABORTED and "modified" in msg
    # unconditional update works
    upd.pod.metadata.resource_version = ""
    upd.pod.metadata.labels["x"] = "y"
    new2 = stub.Update(store_pb2.UpdateRequest(object=upd))
    assert new2.pod.metadata.labels["x"] == "y" and new2.pod.metadata.generation == 2
    # an update for an object of the same name but another uid (deleted and recreated) is refused
    stale_uid = object_pb2.Object()
    stale_uid.CopyFrom(upd)
    stale_uid.pod.metadata.uid = "00000000-0000-0000-0000-000000000000"
    code, msg = code_of(stub.Update, store_pb2.UpdateRequest(object=stale_uid))
    assert code == grpc.StatusCode.ABORTED and "UID" in msg
    # immutable pod field
    upd.pod.spec.restart_policy = "Never"
    code, msg = code_of(stub.Update, store_pb2.UpdateRequest(object=upd))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "spec" in msg


def test_update_status_isolation(stub: store_pb2_grpc.StoreStub) -> None:
    got = create(stub, pod("st-a"))
    upd = object_pb2.Object()
    upd.CopyFrom(got)
    upd.pod.status.phase = "Running"
    upd.pod.metadata.labels["ignored"] = "yes"
    upd.pod.spec.containers[0].image = "ignored"
    new = stub.UpdateStatus(store_pb2.UpdateRequest(object=upd))
    assert new.pod.status.phase == "Running"
    assert "ignored" not in new.pod.metadata.labels
    assert new.pod.spec.containers[0].image == "busybox:1.36"
    assert new.pod.metadata.generation == 1
    code, _ = code_of(stub.UpdateStatus, store_pb2.UpdateRequest(object=upd))
    assert code == grpc.StatusCode.ABORTED


def test_delete_unbound_pod_immediately(stub: store_pb2_grpc.StoreStub) -> None:
    create(stub, pod("del-a"))
    stub.Delete(store_pb2.DeleteRequest(kind="pod", namespace="default", name="del-a"))
    code, _ = code_of(stub.Get, store_pb2.GetRequest(kind="pod", namespace="default", name="del-a"))
    assert code == grpc.StatusCode.NOT_FOUND


def test_graceful_delete_bound_pod(stub: store_pb2_grpc.StoreStub) -> None:
    create(stub, pod("del-b", node="n1"))
    r = stub.Delete(store_pb2.DeleteRequest(kind="pod", namespace="default", name="del-b"))
    assert r.pod.metadata.HasField("deletion_timestamp")
    assert r.pod.metadata.deletion_grace_period_seconds == 30
    still = stub.Get(store_pb2.GetRequest(kind="pod", namespace="default", name="del-b"))
    assert still.pod.metadata.HasField("deletion_timestamp")
    stub.Delete(store_pb2.DeleteRequest(kind="pod", namespace="default", name="del-b", grace_period_seconds=0))
    code, _ = code_of(stub.Get, store_pb2.GetRequest(kind="pod", namespace="default", name="del-b"))
    assert code == grpc.StatusCode.NOT_FOUND


def test_finalizers(stub: store_pb2_grpc.StoreStub) -> None:
    o = pod("fin-a")
    o.pod.metadata.finalizers.append("example.com/hold")
    create(stub, o)
    r = stub.Delete(store_pb2.DeleteRequest(kind="pod", namespace="default", name="fin-a"))
    assert r.pod.metadata.HasField("deletion_timestamp")
    cur = stub.Get(store_pb2.GetRequest(kind="pod", namespace="default", name="fin-a"))
    del cur.pod.metadata.finalizers[:]
    stub.Update(store_pb2.UpdateRequest(object=cur))
    code, _ = code_of(stub.Get, store_pb2.GetRequest(kind="pod", namespace="default", name="fin-a"))
    assert code == grpc.StatusCode.NOT_FOUND


def test_delete_preconditions_and_foreground(stub: store_pb2_grpc.StoreStub) -> None:
    got = create(stub, pod("pre-a"))
    code, _ = code_of(
        stub.Delete,
        store_pb2.DeleteRequest(
            kind="pod", namespace="default", name="pre-a", preconditions=store_pb2.Preconditions(uid="other")
        ),
    )
    assert code == grpc.StatusCode.ABORTED
    r = stub.Delete(
        store_pb2.DeleteRequest(kind="pod", namespace="default", name="pre-a", propagation_policy="Foreground")
    )
    assert "foregroundDeletion" in r.pod.metadata.finalizers and r.pod.metadata.HasField("deletion_timestamp")
    assert r.pod.metadata.uid == got.pod.metadata.uid


def test_restart_keeps_data(tmp_path: Path) -> None:
    with start_store(tmp_path) as c, grpc.insecure_channel(c.endpoints[0]) as ch:
        s = store_pb2_grpc.StoreStub(ch)
        made = create(s, pod("keep-me"))
        c.kill(0)
        c.restart(0)
        got = s.Get(store_pb2.GetRequest(kind="pod", namespace="default", name="keep-me"), wait_for_ready=True)
        assert got == made
        nss = s.List(store_pb2.ListRequest(kind="namespace")).items
        assert len(nss) == 4


def test_namespace_deletion_empties_it(stub: store_pb2_grpc.StoreStub) -> None:
    o = object_pb2.Object()
    o.namespace.metadata.name = "doomed"
    create(stub, o)
    create(stub, pod("a", ns="doomed"))
    create(stub, pod("b", ns="doomed", node="n1"))  # graceful: waits for its node agent
    r = stub.Delete(store_pb2.DeleteRequest(kind="namespace", name="doomed"))
    assert r.namespace.status.phase == "Terminating"
    code, msg = code_of(stub.Create, store_pb2.CreateRequest(object=pod("c", ns="doomed")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "terminated" in msg
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = stub.List(store_pb2.ListRequest(kind="pod", namespace="doomed")).items
        if [p.pod.metadata.name for p in left] == ["b"] and left[0].pod.metadata.HasField("deletion_timestamp"):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"namespace not emptied: {left}")
    stub.Delete(store_pb2.DeleteRequest(kind="pod", namespace="doomed", name="b", grace_period_seconds=0))
    while time.monotonic() < deadline:
        try:
            stub.Get(store_pb2.GetRequest(kind="namespace", name="doomed"))
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND
            break
        time.sleep(0.1)
    else:
        raise AssertionError("namespace not removed")
    code, _ = code_of(stub.Delete, store_pb2.DeleteRequest(kind="namespace", name="default"))
    assert code == grpc.StatusCode.PERMISSION_DENIED


def test_watch_resumes_after_crash_without_gaps(tmp_path: Path) -> None:
    with start_store(tmp_path) as c, grpc.insecure_channel(c.endpoints[0]) as ch:
        s = store_pb2_grpc.StoreStub(ch)
        start = s.List(store_pb2.ListRequest(kind="pod")).revision
        acked = [int(create(s, pod(f"r{i}")).pod.metadata.resource_version) for i in range(20)]
        seen: list[int] = []
        call = s.Watch(store_pb2.WatchRequest(kind="pod", from_revision=start), timeout=10)
        for ev in call:
            seen.append(ev.revision)
            if len(seen) == 10:
                call.cancel()
                break
        c.kill(0)
        c.restart(0)
        acked += [int(create(s, pod(f"s{i}")).pod.metadata.resource_version) for i in range(5)]
        call = s.Watch(store_pb2.WatchRequest(kind="pod", from_revision=seen[-1]), timeout=10, wait_for_ready=True)
        for ev in call:
            seen.append(ev.revision)
            if len(seen) == 25:
                call.cancel()
                break
        assert seen == acked


def test_tls_and_authorization(tmp_path: Path) -> None:
    from pinnace.common import tls

    with start_store(tmp_path / "s", tls_dir=str(tmp_path / "pki")) as c:
        with c.channel(0) as ch:
            create(store_pb2_grpc.StoreStub(ch), pod("tls-ok"))
        sched = tls.issue(tmp_path / "pki", "scheduler", "scheduler")
        with tls.secure_channel(c.endpoints[0], sched) as ch:
            s = store_pb2_grpc.StoreStub(ch)
            assert s.Get(store_pb2.GetRequest(kind="pod", namespace="default", name="tls-ok")).pod.metadata.uid
            ns = object_pb2.Object()
            ns.namespace.metadata.name = "nope"
            code, msg = code_of(s.Create, store_pb2.CreateRequest(object=ns))
            assert code == grpc.StatusCode.PERMISSION_DENIED and "scheduler" in msg
        with grpc.insecure_channel(c.endpoints[0]) as ch:
            with pytest.raises(grpc.RpcError):
                store_pb2_grpc.StoreStub(ch).Get(store_pb2.GetRequest(kind="pod", name="x"), timeout=2)
