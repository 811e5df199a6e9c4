"""The whole cluster, end to end, as a user runs it: `pinnace up --nodes 3 --store-replicas 3`, the
example app, Services, DNS, scaling, a rolling update without failed requests, a PVC across pod
restarts, a node failure, a store leader failure, `net diagnose`, and `pinnace down` leaving
nothing behind. Root only; all traffic stays inside the lab's namespaces."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import TypeVar

import pytest

from pinnace.api import apps_pb2, pod_pb2, service_pb2
from tests.support.cluster import PY, ROOT, LabCluster
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the cluster lives in network namespaces"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2"),
]

T = TypeVar("T")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCluster]:
    if os.path.exists("/run/netns/pnt-cp"):
        pytest.skip("a test cluster with prefix pnt is already running")
    c = LabCluster(tmp_path_factory.mktemp("cluster"), node_grace_period=8, eviction_timeout=5)
    try:
        c.up()
        yield c
    finally:
        c.down()
        left = c.leftovers()
        assert not left, f"pinnace down left things behind: {left}"


def running_pods(c: LabCluster, selector: str) -> list[pod_pb2.Pod]:
    assert c.client is not None
    pods = c.client.list(pod_pb2.Pod, namespace="default", label_selector=selector).items
    return [
        p
        for p in pods
        if p.status.phase == "Running"
        and not p.metadata.HasField("deletion_timestamp")
        and any(cond.type == "Ready" and cond.status == "True" for cond in p.status.conditions)
    ]


def cluster_ip(c: LabCluster, name: str) -> str:
    assert c.client is not None
    return c.client.get(service_pb2.Service, name, "default").spec.cluster_ip


def test_up_and_nodes_ready(cluster: LabCluster) -> None:
    out = cluster.cli("get", "nodes")
    for i in range(cluster.nodes):
        assert f"node{i + 1}" in out
    assert cluster.up_seconds < 120


def test_example_app_runs_on_two_nodes_and_serves_through_cluster_ip(cluster: LabCluster) -> None:
    cluster.cli("apply", "-f", str(ROOT / "examples" / "web.yaml"))
    pods = eventually(lambda: (p := running_pods(cluster, "app=web")) and len(p) == 3 and p, 90, what="3 web pods")
    assert len({p.spec.node_name for p in pods}) >= 2, [p.spec.node_name for p in pods]
    ip = cluster_ip(cluster, "web")
    for i in range(cluster.nodes):
        ns = cluster.ns(f"node{i + 1}")
        # The node's proxy may still be writing the rules for the newest endpoints.
        eventually(lambda ns=ns: cluster.http_get(ns, f"http://{ip}/"), 30, what=f"ClusterIP from {ns}")
        seen = Counter(cluster.http_get(ns, f"http://{ip}/").split()[2] for _ in range(12))
        assert len(seen) >= 2, f"node{i + 1} reached only {seen}"


def test_pods_reach_cluster_ip_and_dns(cluster: LabCluster) -> None:
    ip = cluster_ip(cluster, "web")
    for pod in running_pods(cluster, "app=web"):
        netns = "pn-" + pod.metadata.uid.replace("-", "")[:12]
        assert cluster.http_get(netns, f"http://{ip}/").startswith("hello from")
    pod = running_pods(cluster, "app=web")[0]
    netns = "pn-" + pod.metadata.uid.replace("-", "")[:12]
    code = (
        "import dnslib\n"
        "q = dnslib.DNSRecord.question('web.default.svc.cluster.local')\n"
        "print(dnslib.DNSRecord.parse(q.send('10.96.0.10', 53, timeout=3)).short())\n"
    )
    assert cluster.in_ns(netns, PY, "-c", code).stdout.strip() == ip


def test_scale_up_and_down(cluster: LabCluster) -> None:
    cluster.cli("scale", "deployment/web", "--replicas", "10")
    eventually(lambda: len(running_pods(cluster, "app=web")) == 10, 120, what="10 web pods")
    cluster.cli("scale", "deployment/web", "--replicas", "2")
    eventually(lambda: len(cluster.client.list(pod_pb2.Pod, "default", label_selector="app=web").items) == 2, 90)  # type: ignore[union-attr]


def test_rolling_update_drops_no_request(cluster: LabCluster) -> None:
    assert cluster.client is not None
    cluster.cli("scale", "deployment/web", "--replicas", "3")
    eventually(lambda: len(running_pods(cluster, "app=web")) == 3, 90)
    ip = cluster_ip(cluster, "web")
    stop = threading.Event()
    results: Counter[str] = Counter()

    def loop() -> None:
        while not stop.is_set():
            try:
                cluster.http_get(cluster.ns("node1"), f"http://{ip}/", timeout=3)
                results["ok"] += 1
            except AssertionError:
                results["failed"] += 1

    t = threading.Thread(target=loop)
    t.start()
    try:

        def bump(d: apps_pb2.Deployment) -> None:
            d.spec.template.metadata.annotations["example/version"] = "2"
            d.spec.strategy.rolling_update.max_unavailable.int_val = 0
            d.spec.strategy.rolling_update.max_surge.int_val = 1

        cluster.client.mutate(apps_pb2.Deployment, "web", "default", bump)
        cluster.cli("rollout", "status", "deployment/web", timeout=180)
    finally:
        stop.set()
        t.join()
    assert results["ok"] > 5 and results["failed"] == 0, results


def test_pvc_survives_pod_deletion(cluster: LabCluster) -> None:
    assert cluster.client is not None
    cluster.cli("apply", "-f", str(ROOT / "examples" / "writer.yaml"))
    first = eventually(lambda: running_pods(cluster, "app=writer"), 90, what="writer pod")[0]
    time.sleep(6)
    cluster.client.delete(pod_pb2.Pod, first.metadata.name, "default")
    second = eventually(
        lambda: [p for p in running_pods(cluster, "app=writer") if p.metadata.uid != first.metadata.uid], 90
    )[0]
    out = cluster.cli("exec", second.metadata.name, "--", "cat", "/data/log")
    assert len(out.strip().splitlines()) >= 2, out


def test_net_diagnose_passes(cluster: LabCluster) -> None:
    # Right after the rollouts above, a diagnosis may catch a moment of churn; it must settle.
    out = eventually(
        lambda: (o := cluster.cli("net", "diagnose", timeout=120, check=False)) and "FAIL" not in o and o,
        90,
        what="net diagnose passing",
    )
    assert "all checks passed" in out, out


def test_store_leader_failure_keeps_cluster_working(cluster: LabCluster) -> None:
    assert cluster.client is not None
    st = cluster.client.status()
    leader = st.leader_id
    comp = next(c for c in cluster.status()["components"] if c["name"] == f"store-{leader}")
    os.kill(comp["pid"], 9)
    deploy = apps_pb2.Deployment()
    deploy.metadata.name = "after-failover"
    deploy.metadata.namespace = "default"
    deploy.spec.replicas = 1
    deploy.spec.selector.match_labels["app"] = "after-failover"
    deploy.spec.template.metadata.labels["app"] = "after-failover"
    c = deploy.spec.template.spec.containers.add(name="c", image="busybox", command=["sleep", "3600"])
    assert c.name == "c"
    eventually(lambda: cluster.client.create(deploy), 30, what="a write after the leader died")  # type: ignore[union-attr]
    eventually(lambda: running_pods(cluster, "app=after-failover"), 90, what="a pod after failover")


def test_node_failure_replaces_its_pods(cluster: LabCluster) -> None:
    assert cluster.client is not None
    # The node holding the most web pods (scheduling decides which), so there is always one to replace.
    holders = Counter(p.spec.node_name for p in running_pods(cluster, "app=web"))
    assert holders, "no running web pod to replace"
    victim = holders.most_common(1)[0][0]
    # Stop the node's agents for good and cut its link to the underlay.
    # Only this lab's agents of that node: their command lines name this lab's data directory.
    agents = f"{cluster.data_dir}/nodes/{victim}"
    subprocess.run(["pkill", "-STOP", "-f", agents], check=False)
    subprocess.run(["ip", "-n", cluster.ns(victim), "link", "set", "eth0", "down"], check=False)
    eventually(
        lambda: len([p for p in running_pods(cluster, "app=web") if p.spec.node_name != victim]) >= 3,
        8 + 5 + 90,
        what="web pods replaced on the remaining nodes",
    )
    subprocess.run(["pkill", "-CONT", "-f", agents], check=False)
