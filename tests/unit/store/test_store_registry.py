"""Unit tests of the registry: defaults, create/update strategies, immutability, deletion plans, fields."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from pinnace.api.object_pb2 import Object
from services.store.mvcc import MVCCStore
from services.store.registry import strategy
from services.store.registry.allocators import ClusterIPAllocator, NodePortAllocator, parse_port_range
from services.store.registry.errors import StoreError
from services.store.registry.fields import FieldSelector, field_value
from services.store.registry.service_alloc import ServiceAllocator


def pod(name: str = "p", node: str = "") -> Object:
    o = Object()
    o.pod.metadata.name = name
    c = o.pod.spec.containers.add()
    c.name = "c"
    c.image = "nginx:1.25"
    o.pod.spec.node_name = node
    return o


def test_pod_create_defaults() -> None:
    o = pod()
    strategy.prepare_create(o)
    m, s = o.pod.metadata, o.pod.spec
    assert m.namespace == "default" and m.uid and m.generation == 1 and m.creation_timestamp.seconds
    assert s.restart_policy == "Always" and s.dns_policy == "ClusterFirst"
    assert s.termination_grace_period_seconds == 30 and s.containers[0].image_pull_policy == "IfNotPresent"
    assert o.pod.status.phase == "Pending"


def test_deployment_defaults() -> None:
    o = Object()
    o.deployment.metadata.name = "d"
    o.deployment.spec.selector.match_labels["app"] = "d"
    o.deployment.spec.template.metadata.labels["app"] = "d"
    c = o.deployment.spec.template.spec.containers.add()
    c.name = "c"
    c.image = "nginx"
    strategy.prepare_create(o)
    s = o.deployment.spec
    assert s.replicas == 1 and s.strategy.type == "RollingUpdate" and s.revision_history_limit == 10
    assert s.strategy.rolling_update.max_surge.str_val == "25%" and s.progress_deadline_seconds == 600
    assert s.template.spec.restart_policy == "Always"


def test_pv_and_cluster_scoped() -> None:
    o = Object()
    o.persistent_volume.metadata.name = "pv1"
    o.persistent_volume.spec.capacity["storage"].value = "1Gi"
    o.persistent_volume.spec.access_modes.append("ReadWriteOnce")
    o.persistent_volume.spec.host_path.path = "/tmp/x"
    strategy.prepare_create(o)
    assert o.persistent_volume.spec.persistent_volume_reclaim_policy == "Retain"
    assert o.persistent_volume.metadata.namespace == ""
    o2 = Object()
    o2.node.metadata.name = "n"
    o2.node.metadata.namespace = "default"
    with pytest.raises(StoreError) as ei:
        strategy.prepare_create(o2)
    assert "metadata.namespace" in ei.value.message


def test_generate_name_and_bad_name() -> None:
    o = pod("")
    o.pod.metadata.generate_name = "web-"
    strategy.prepare_create(o)
    assert o.pod.metadata.name.startswith("web-") and len(o.pod.metadata.name) == 9
    with pytest.raises(StoreError) as ei:
        strategy.prepare_create(pod("UPPER"))
    assert ei.value.code == grpc.StatusCode.INVALID_ARGUMENT and "metadata.name" in ei.value.message


def stored(o: Object) -> Object:
    strategy.prepare_create(o)
    return o


def test_update_keeps_status_and_bumps_generation() -> None:
    old = stored(pod())
    old.pod.status.phase = "Running"
    new = Object()
    new.CopyFrom(old)
    new.pod.status.phase = "Failed"
    new.pod.metadata.labels["a"] = "b"
    new.pod.metadata.uid = "forged"
    strategy.prepare_update(old, new)
    assert new.pod.status.phase == "Running" and new.pod.metadata.generation == 1
    assert new.pod.metadata.uid == old.pod.metadata.uid
    new2 = Object()
    new2.CopyFrom(old)
    new2.pod.spec.containers[0].image = "nginx:1.26"
    strategy.prepare_update(old, new2)
    assert new2.pod.metadata.generation == 2


def test_pod_immutability_and_binding() -> None:
    old = stored(pod())
    bind = Object()
    bind.CopyFrom(old)
    bind.pod.spec.node_name = "n1"
    strategy.prepare_update(old, bind)  # setting nodeName once is allowed
    rebind = Object()
    rebind.CopyFrom(bind)
    rebind.pod.spec.node_name = "n2"
    with pytest.raises(StoreError) as ei:
        strategy.prepare_update(bind, rebind)
    assert ei.value.message.startswith("spec:")
    tol = Object()
    tol.CopyFrom(bind)
    tol.pod.spec.tolerations.add(key="k", operator="Exists")
    strategy.prepare_update(bind, tol)


def test_selector_immutable() -> None:
    o = Object()
    o.replica_set.metadata.name = "rs"
    o.replica_set.spec.selector.match_labels["app"] = "a"
    o.replica_set.spec.template.metadata.labels["app"] = "a"
    c = o.replica_set.spec.template.spec.containers.add()
    c.name = "c"
    c.image = "i"
    old = stored(o)
    new = Object()
    new.CopyFrom(old)
    new.replica_set.spec.selector.match_labels["app"] = "b"
    new.replica_set.spec.template.metadata.labels["app"] = "b"
    with pytest.raises(StoreError) as ei:
        strategy.prepare_update(old, new)
    assert "spec.selector" in ei.value.message


def test_update_status_only_status() -> None:
    old = stored(pod())
    new = Object()
    new.CopyFrom(old)
    new.pod.status.phase = "Running"
    new.pod.metadata.labels["x"] = "y"
    out = strategy.prepare_update_status(old, new)
    assert out.pod.status.phase == "Running" and "x" not in out.pod.metadata.labels


def test_plan_delete() -> None:
    unbound = stored(pod())
    assert strategy.plan_delete(unbound, None, "") is None
    bound = stored(pod(node="n1"))
    plan = strategy.plan_delete(bound, None, "")
    assert plan is not None and plan.pod.metadata.deletion_grace_period_seconds == 30
    assert strategy.plan_delete(bound, 0, "") is None
    again = strategy.plan_delete(plan, None, "")
    assert again is plan  # already terminating: nothing changes
    assert strategy.plan_delete(plan, 0, "") is None
    orphan = strategy.plan_delete(unbound, None, "Orphan")
    assert orphan is not None and "orphan" in orphan.pod.metadata.finalizers
    with pytest.raises(StoreError):
        strategy.plan_delete(unbound, None, "Sideways")
    fin = stored(pod())
    fin.pod.metadata.finalizers.append("x/y")
    planned = strategy.plan_delete(fin, None, "")
    assert planned is not None and planned.pod.metadata.HasField("deletion_timestamp")


def test_no_new_finalizers_while_terminating() -> None:
    o = stored(pod())
    o.pod.metadata.finalizers.append("a/b")
    term = strategy.plan_delete(o, None, "")
    assert term is not None
    new = Object()
    new.CopyFrom(term)
    new.pod.metadata.finalizers.append("c/d")
    with pytest.raises(StoreError):
        strategy.prepare_update(term, new)


def test_field_values() -> None:
    o = stored(pod(node="n1"))
    assert field_value(o.pod, "spec.nodeName") == "n1"
    assert field_value(o.pod, "spec.node_name") == "n1"
    assert field_value(o.pod, "status.phase") == "Pending"
    assert field_value(o.pod, "metadata.namespace") == "default"
    assert FieldSelector("spec.nodeName=n1,status.phase!=Running").matches(o.pod)
    assert not FieldSelector("spec.nodeName=").matches(o.pod)
    with pytest.raises(ValueError):
        FieldSelector("spec.nope=1").check(o.pod)


def test_allocators(tmp_path: Path) -> None:
    store = MVCCStore(str(tmp_path))
    ips = ClusterIPAllocator(store, "10.96.0.0/16")
    assert ips.contains("10.96.0.10") and not ips.contains("10.0.171.239") and not ips.contains("10.96.0.0")
    picked = {ips.pick() for _ in range(200)}
    assert len(picked) == 200 and all(p and not p.startswith("10.96.0.") for p in picked)
    ports = NodePortAllocator(store, "30000-30002")
    got = {ports.pick() for _ in range(3)}
    assert got == {30000, 30001, 30002} and ports.pick() is None
    assert parse_port_range("30000-32767") == (30000, 32767)
    with pytest.raises(ValueError):
        parse_port_range("5-1")


def test_service_plan(tmp_path: Path) -> None:
    store = MVCCStore(str(tmp_path))
    alloc = ServiceAllocator(ClusterIPAllocator(store, "10.96.0.0/16"), NodePortAllocator(store, "30000-32767"))
    o = Object()
    o.service.metadata.name = "s"
    o.service.spec.type = "NodePort"
    o.service.spec.ports.add(port=80)
    plan = alloc.plan(o, None, "/registry/services/default/s")
    assert o.service.spec.cluster_ip and o.service.spec.ports[0].node_port
    assert len(plan.compares) == 2 and len(plan.ops) == 2
    bad = Object()
    bad.service.metadata.name = "b"
    bad.service.spec.cluster_ip = "10.0.171.239"
    with pytest.raises(StoreError) as ei:
        alloc.plan(bad, None, "/registry/services/default/b")
    assert ei.value.message == "spec.clusterIP: 10.0.171.239 is not in the service range 10.96.0.0/16"
    # type change away from NodePort frees the port
    new = Object()
    new.CopyFrom(o)
    new.service.spec.type = "ClusterIP"
    plan2 = alloc.plan(new, o, "/registry/services/default/s")
    assert [op.key.startswith("/ranges/nodeports/") for op in plan2.ops] == [True]
    assert new.service.spec.ports[0].node_port == 0


def test_new_uid_is_a_random_version_4_uuid() -> None:
    import uuid

    from services.store.registry.strategy import new_uid

    seen = set()
    for _ in range(2000):
        text = new_uid()
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text
        seen.add(text)
    assert len(seen) == 2000
