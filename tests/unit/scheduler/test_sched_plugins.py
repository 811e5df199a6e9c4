"""Scheduler plugin logic against the in-memory harness (no store)."""

from __future__ import annotations

from collections import Counter

from pinnace.api import pod_pb2, storage_pb2
from services.scheduler.framework import fit_error_message
from services.scheduler.harness import Harness
from tests.unit.scheduler.builders import node, pod


def test_resources_fit_and_message() -> None:
    h = Harness(
        [
            node("a", cpu="1"),
            node("b", cpu="1"),
            node("c", cpu="8", taints=[("node.kubernetes.io/not-ready", "", "NoSchedule")]),
        ]
    )
    d = h.schedule(pod("p", cpu="2"))
    assert d.node is None
    assert d.message == (
        "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }."
    )
    assert h.schedule(pod("q", cpu="500m")).node in ("a", "b")


def test_requests_accumulate_and_pod_slots() -> None:
    h = Harness([node("a", cpu="1", pods=2)])
    assert h.schedule(pod("p1", cpu="400m")).node == "a"
    assert h.schedule(pod("p2", cpu="400m")).node == "a"
    d = h.schedule(pod("p3", cpu="100m"))
    assert d.node is None and d.reasons == Counter({"Too many pods": 1})


def test_bound_pods_count_and_terminated_do_not() -> None:
    done = pod("old", cpu="900m", node_name="a")
    done.status.phase = "Succeeded"
    h = Harness([node("a", cpu="1")], pods=[pod("x", cpu="600m", node_name="a"), done])
    assert h.schedule(pod("p", cpu="500m")).node is None
    h.cache.observe_pod(done)
    x = pod("x", cpu="600m", node_name="a")
    x.status.phase = "Failed"
    h.cache.observe_pod(x)
    assert h.schedule(pod("p", cpu="500m")).node == "a"


def test_least_allocated_spreads() -> None:
    h = Harness([node("a"), node("b")])
    nodes = [h.schedule(pod(f"p{i}", cpu="1", mem="1Gi")).node for i in range(4)]
    assert sorted(nodes) == ["a", "a", "b", "b"]


def test_unschedulable_and_node_name() -> None:
    h = Harness([node("a", unschedulable=True), node("b")])
    assert h.schedule(pod("p")).node == "b"
    p = pod("q")
    p.spec.node_selector["kubernetes.io/hostname"] = "a"
    d = h.schedule(p)
    assert d.node is None
    assert d.reasons == Counter(
        {"node(s) were unschedulable": 1, "node(s) didn't match Pod's node affinity/selector": 1}
    )


def test_node_affinity_operators() -> None:
    h = Harness([node("a", labels={"zone": "x", "gen": "3"}), node("b", labels={"zone": "y", "gen": "5"}), node("c")])

    def with_expr(key: str, op: str, values: list[str]) -> pod_pb2.Pod:
        p = pod("p")
        req = p.spec.affinity.node_affinity.required_during_scheduling_ignored_during_execution
        req.node_selector_terms.add().match_expressions.add(key=key, operator=op, values=values)
        return p

    assert h.framework.schedule(with_expr("zone", "In", ["x"])).node == "a"
    assert h.framework.schedule(with_expr("zone", "NotIn", ["x", "y"])).node == "c"
    assert h.framework.schedule(with_expr("zone", "DoesNotExist", [])).node == "c"
    assert h.framework.schedule(with_expr("gen", "Gt", ["4"])).node == "b"
    assert h.framework.schedule(with_expr("gen", "Lt", ["4"])).node == "a"
    assert h.framework.schedule(with_expr("zone", "Exists", [])).node in ("a", "b")


def test_preferred_node_affinity_wins_ties() -> None:
    h = Harness([node("a"), node("b", labels={"disk": "ssd"})])
    p = pod("p")
    pref = p.spec.affinity.node_affinity.preferred_during_scheduling_ignored_during_execution.add(weight=50)
    pref.preference.match_expressions.add(key="disk", operator="In", values=["ssd"])
    assert h.schedule(p).node == "b"


def test_taints_and_tolerations() -> None:
    h = Harness([node("a", taints=[("dedicated", "gpu", "NoSchedule")]), node("b", taints=[("x", "", "NoExecute")])])
    assert h.schedule(pod("p")).node is None
    p = pod("q")
    p.spec.tolerations.add(key="dedicated", operator="Equal", value="gpu", effect="NoSchedule")
    assert h.schedule(p).node == "a"
    p2 = pod("r")
    p2.spec.tolerations.add(operator="Exists")
    assert h.schedule(p2).node in ("a", "b")


def test_prefer_no_schedule_scores_lower() -> None:
    h = Harness([node("a", taints=[("soft", "", "PreferNoSchedule")]), node("b")])
    assert all(h.schedule(pod(f"p{i}")).node == "b" for i in range(3))


def test_pod_anti_affinity_by_hostname() -> None:
    h = Harness([node("a"), node("b"), node("c")])

    def web(name: str) -> pod_pb2.Pod:
        p = pod(name, labels={"app": "web"})
        t = p.spec.affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution.add()
        t.label_selector.match_labels["app"] = "web"
        t.topology_key = "kubernetes.io/hostname"
        return p

    placed = [h.schedule(web(f"w{i}")).node for i in range(3)]
    assert sorted(placed) == ["a", "b", "c"]  # type: ignore[type-var]
    d = h.schedule(web("w3"))
    assert d.node is None
    assert "3 node(s) didn't match pod anti-affinity rules" in d.message


def test_existing_pods_anti_affinity_is_symmetric() -> None:
    h = Harness([node("a"), node("b")])
    loner = pod("loner", labels={"app": "loner"})
    t = loner.spec.affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution.add()
    t.label_selector.match_labels["app"] = "web"
    t.topology_key = "kubernetes.io/hostname"
    where = h.schedule(loner).node
    placed = {h.schedule(pod(f"w{i}", labels={"app": "web"})).node for i in range(3)}
    assert where not in placed


def test_pod_affinity_follows_and_first_pod_goes_anywhere() -> None:
    h = Harness([node("a"), node("b"), node("c")])

    def cache_pod(name: str) -> pod_pb2.Pod:
        p = pod(name, labels={"app": "cache"})
        t = p.spec.affinity.pod_affinity.required_during_scheduling_ignored_during_execution.add()
        t.label_selector.match_labels["app"] = "cache"
        t.topology_key = "kubernetes.io/hostname"
        return p

    first = h.schedule(cache_pod("c0")).node
    assert first is not None
    assert all(h.schedule(cache_pod(f"c{i}")).node == first for i in range(1, 4))


def test_topology_spread_by_hostname() -> None:
    h = Harness([node("a"), node("b")], pods=[pod("x0", labels={"app": "s"}, node_name="a")])

    def spread(name: str) -> pod_pb2.Pod:
        p = pod(name, labels={"app": "s"})
        c = p.spec.topology_spread_constraints.add(max_skew=1, topology_key="kubernetes.io/hostname")
        c.when_unsatisfiable = "DoNotSchedule"
        c.label_selector.match_labels["app"] = "s"
        return p

    assert h.schedule(spread("p1")).node == "b"
    nodes = Counter(h.schedule(spread(f"p{i}")).node for i in range(2, 8))
    assert nodes == Counter({"a": 3, "b": 3})


def test_nfs_volume_needs_nfs_client() -> None:
    h = Harness([node("a"), node("b", labels={"pinnace.io/nfs-client": "true"})])
    p = pod("p")
    p.spec.volumes.add(name="v").nfs.server = "10.0.0.1"
    assert h.schedule(p).node == "b"
    h2 = Harness([node("a")])
    d = h2.schedule(p)
    assert d.node is None and "lacked an NFS client" in d.message


def _claim(name: str, volume: str = "", sc: str | None = None) -> storage_pb2.PersistentVolumeClaim:
    c = storage_pb2.PersistentVolumeClaim()
    c.metadata.name = name
    c.metadata.namespace = "default"
    if volume:
        c.spec.volume_name = volume
        c.status.phase = "Bound"
    if sc is not None:
        c.spec.storage_class_name = sc
    return c


def _pod_with_claim(name: str, claim: str) -> pod_pb2.Pod:
    p = pod(name)
    p.spec.volumes.add(name="data").persistent_volume_claim.claim_name = claim
    return p


def test_claims_bound_nfs_local_unbound() -> None:
    h = Harness([node("a"), node("b", labels={"pinnace.io/nfs-client": "true"}), node("c")])
    nfs = storage_pb2.PersistentVolume()
    nfs.metadata.name = "nfs-pv"
    nfs.spec.nfs.server = "srv"
    local = storage_pb2.PersistentVolume()
    local.metadata.name = "local-pv"
    local.spec.host_path.path = "/data"
    term = local.spec.node_affinity.required.node_selector_terms.add()
    term.match_expressions.add(key="kubernetes.io/hostname", operator="In", values=["c"])
    h.add_pv(nfs)
    h.add_pv(local)
    h.add_pvc(_claim("shared", "nfs-pv"))
    h.add_pvc(_claim("mine", "local-pv"))
    h.add_pvc(_claim("waiting"))
    h.add_pvc(_claim("late", sc="wffc"))
    wffc = storage_pb2.StorageClass(volume_binding_mode="WaitForFirstConsumer")
    wffc.metadata.name = "wffc"
    h.add_storage_class(wffc)
    assert h.schedule(_pod_with_claim("p1", "shared")).node == "b"
    assert h.schedule(_pod_with_claim("p2", "mine")).node == "c"
    d = h.schedule(_pod_with_claim("p3", "waiting"))
    assert d.node is None and d.message == '0/3 nodes are available: persistentvolumeclaim "waiting" not bound.'
    assert h.schedule(_pod_with_claim("p4", "late")).node is not None
    assert 'persistentvolumeclaim "nope" not found' in h.schedule(_pod_with_claim("p5", "nope")).message


def test_explain_lists_every_failed_filter_and_scores() -> None:
    h = Harness([node("a", cpu="1", taints=[("t", "", "NoSchedule")]), node("b")])
    reason, reports = h.explain(pod("p", cpu="2"))
    assert reason is None
    by = {r.node: r for r in reports}
    assert by["a"].failed == {
        "TaintToleration": ["node(s) had untolerated taint {t: }"],
        "NodeResourcesFit": ["Insufficient cpu"],
    }
    assert not by["b"].failed and "NodeResourcesLeastAllocated" in by["b"].scores
    assert reports[0].node == "b"


def test_fit_error_message_format() -> None:
    assert fit_error_message(0, Counter()) == "0/0 nodes are available: no nodes registered."
    assert (
        fit_error_message(5, Counter({"Insufficient cpu": 3, "x": 2}))
        == "0/5 nodes are available: 3 Insufficient cpu, 2 x."
    )


def test_node_removal_and_readd_keeps_counts() -> None:
    h = Harness([node("a", cpu="1")], pods=[pod("x", cpu="800m", node_name="a")])
    h.cache.remove_node("a")
    assert h.schedule(pod("p", cpu="500m")).node is None
    h.cache.upsert_node(node("a", cpu="1"))
    assert h.schedule(pod("p", cpu="500m")).node is None
    h.cache.remove_pod("default/x")
    assert h.schedule(pod("p", cpu="500m")).node == "a"


async def test_queue_orders_by_priority_then_arrival_and_parks() -> None:
    from services.scheduler.queue import SchedulingQueue

    q = SchedulingQueue()
    q.add("default/a")
    q.set_priority("default/b", 100)
    q.add("default/b")
    q.add("default/c")
    q.add("default/a")  # no duplicate
    assert [await q.pop() for _ in range(3)] == ["default/b", "default/a", "default/c"]
    q.park("default/a")
    assert q.pop_nowait() is None and q.unschedulable_count == 1
    q.move_all()  # after its backoff (1 s) it is active again
    q.remove("default/a")
    assert q.pop_nowait() is None


def test_existing_anti_affinity_released_when_its_pod_goes() -> None:
    h = Harness([node("a")])
    loner = pod("loner", labels={"app": "loner"})
    t = loner.spec.affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution.add()
    t.label_selector.match_labels["app"] = "web"
    t.topology_key = "kubernetes.io/hostname"
    assert h.schedule(loner).node == "a"
    d = h.schedule(pod("w", labels={"app": "web"}))
    assert d.node is None and "didn't satisfy existing pods anti-affinity rules" in d.message
    assert h.schedule(pod("other", labels={"app": "db"})).node == "a"
    h.cache.remove_pod("default/loner")
    assert not h.cache.anti_terms
    assert h.schedule(pod("w", labels={"app": "web"})).node == "a"
