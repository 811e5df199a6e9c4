"""Pure controller logic: rollout arithmetic, template hashing, endpoints subsets, pod ranking,
eviction delays and pod CIDR allocation."""

from __future__ import annotations

from pinnace.api import apps_pb2, meta_pb2, node_pb2, pod_pb2, service_pb2
from services.controllers.endpoints import build_subsets
from services.controllers.nodeipam import CidrSet
from services.controllers.nodelifecycle import eviction_delay
from services.controllers.podutil import deletion_rank
from services.controllers.rollout import (
    HASH_LABEL,
    new_rs_replicas,
    old_scale_down_budget,
    resolve,
    surge_and_unavailable,
    template_hash,
    templates_equal,
)


def _deploy(replicas: int, surge: str | int = "25%", unavail: str | int = "25%") -> apps_pb2.Deployment:
    d = apps_pb2.Deployment()
    d.spec.replicas = replicas
    ru = d.spec.strategy.rolling_update
    for field, v in ((ru.max_surge, surge), (ru.max_unavailable, unavail)):
        if isinstance(v, int):
            field.int_val = v
        else:
            field.str_val = v
    return d


def _rs(replicas: int, available: int) -> apps_pb2.ReplicaSet:
    rs = apps_pb2.ReplicaSet()
    rs.spec.replicas = replicas
    rs.status.available_replicas = available
    return rs


def test_resolve_int_or_percent() -> None:
    assert resolve(meta_pb2.IntOrString(str_val="25%"), 10, round_up=True) == 3
    assert resolve(meta_pb2.IntOrString(str_val="25%"), 10, round_up=False) == 2
    assert resolve(meta_pb2.IntOrString(int_val=2), 10, round_up=False) == 2
    assert resolve(meta_pb2.IntOrString(), 4, round_up=True) == 1  # default 25%
    assert surge_and_unavailable(_deploy(3, 0, 0)) == (0, 1)


def test_rolling_update_steps_respect_surge_and_unavailable() -> None:
    d = _deploy(4, surge=1, unavail=1)
    old, new = _rs(4, 4), _rs(0, 0)
    assert new_rs_replicas(d, [old, new], new) == 1  # 4 + 1 surge - 4 current
    new = _rs(1, 0)
    # 5 pods, min available 3, the new one unavailable: 5 - 3 - 1 = 1 old may go
    assert old_scale_down_budget(d, [old, new], new) == 1
    new = _rs(1, 1)
    assert old_scale_down_budget(d, [old, new], new) == 2


def test_template_hash_ignores_its_own_label_and_is_stable() -> None:
    t = pod_pb2.PodTemplateSpec()
    t.metadata.labels["app"] = "web"
    t.spec.containers.add(name="c", image="nginx:1")
    h = template_hash(t)
    t2 = pod_pb2.PodTemplateSpec()
    t2.CopyFrom(t)
    t2.metadata.labels[HASH_LABEL] = h
    assert template_hash(t2) == h and templates_equal(t, t2)
    t2.spec.containers[0].image = "nginx:2"
    assert template_hash(t2) != h
    assert template_hash(t, 1) != h


def _pod(name: str, ip: str, ready: bool, port_name: str = "http", port: int = 8080) -> pod_pb2.Pod:
    p = pod_pb2.Pod()
    p.metadata.name, p.metadata.namespace, p.metadata.uid = name, "default", f"uid-{name}"
    p.spec.node_name = "n1"
    p.spec.containers.add(name="c").ports.add(name=port_name, container_port=port)
    p.status.pod_ip = ip
    p.status.phase = "Running"
    p.status.conditions.add(type="Ready", status="True" if ready else "False")
    return p


def test_endpoints_named_ports_ready_and_not_ready() -> None:
    svc = service_pb2.Service()
    svc.metadata.name = "web"
    svc.spec.ports.add(name="http", port=80, target_port=meta_pb2.IntOrString(str_val="http"))
    pods = [_pod("a", "10.0.0.2", True), _pod("b", "10.0.0.3", False), _pod("c", "10.0.0.4", True, port=9090)]
    nope = _pod("d", "10.0.0.5", True, port_name="other")
    subsets = build_subsets(svc, [*pods, nope])
    assert len(subsets) == 2
    by_port = {s.ports[0].port: s for s in subsets}
    assert [a.ip for a in by_port[8080].addresses] == ["10.0.0.2"]
    assert [a.ip for a in by_port[8080].not_ready_addresses] == ["10.0.0.3"]
    assert [a.ip for a in by_port[9090].addresses] == ["10.0.0.4"]
    a = by_port[8080].addresses[0]
    assert a.node_name == "n1" and a.target_ref.kind == "Pod" and a.target_ref.name == "a"


def test_endpoints_headless_without_ports() -> None:
    svc = service_pb2.Service()
    svc.metadata.name = "db"
    svc.spec.cluster_ip = "None"
    p = _pod("a", "10.0.0.2", True)
    p.spec.hostname, p.spec.subdomain = "db-0", "db"
    (s,) = build_subsets(svc, [p])
    assert not s.ports and s.addresses[0].hostname == "db-0"


def test_deletion_rank_prefers_unscheduled_pending_notready_newest() -> None:
    unscheduled = pod_pb2.Pod()
    unscheduled.metadata.name = "u"
    pending = _pod("p", "", False)
    pending.status.phase = "Pending"
    notready = _pod("nr", "10.0.0.1", False)
    ready_old = _pod("ro", "10.0.0.2", True)
    ready_old.metadata.creation_timestamp.seconds = 100
    ready_new = _pod("rn", "10.0.0.3", True)
    ready_new.metadata.creation_timestamp.seconds = 200
    order = sorted([ready_old, ready_new, notready, pending, unscheduled], key=deletion_rank)
    assert [p.metadata.name for p in order] == ["u", "p", "nr", "rn", "ro"]


def test_eviction_delay_rules() -> None:
    taint = node_pb2.Taint(key="node.kubernetes.io/unreachable", effect="NoExecute")
    p = pod_pb2.Pod()
    assert eviction_delay(p, taint, 300) == 300
    p.spec.tolerations.add(
        key="node.kubernetes.io/unreachable", operator="Exists", effect="NoExecute", toleration_seconds=5
    )
    assert eviction_delay(p, taint, 300) == 5
    p2 = pod_pb2.Pod()
    p2.spec.tolerations.add(operator="Exists")
    assert eviction_delay(p2, taint, 300) is None
    assert eviction_delay(pod_pb2.Pod(), node_pb2.Taint(key="x", effect="NoExecute"), 300) == 0


def test_cidr_set() -> None:
    s = CidrSet("10.244.0.0/16", 24)
    assert s.size == 256 and s.cidr(0) == "10.244.0.0/24" and s.cidr(3) == "10.244.3.0/24"
    assert s.index_of("10.244.7.0/24") == 7 and s.index_of("10.1.0.0/24") is None
    assert s.first_free({0, 1, 3}) == 2
