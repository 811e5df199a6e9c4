"""The netagent in a three-node namespace lab: pod network, overlay, services, DNS, restart.

Root only; everything lives in namespaces the lab makes and removes (see tests/support/netlab.py).
"""

from __future__ import annotations

import collections

import pytest

from pinnace.api import node_pb2
from tests.e2e.netagent.harness import NetCluster, Pod, outside_get, wait_probe, wait_until

pytestmark = pytest.mark.root


def test_setup_is_idempotent_and_gives_resolv_conf(vxlan_cluster: NetCluster, pods: dict[str, Pod]) -> None:
    a1 = pods["a1"]
    assert a1.resp is not None
    assert a1.resp.gateway == "10.244.1.1" and a1.resp.mtu == 1450
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in a1.resp.resolv_conf
    from pinnace.api import meta_pb2, nodelocal_pb2, nodelocal_pb2_grpc, pod_pb2

    with vxlan_cluster.channel("node1") as ch:
        again = nodelocal_pb2_grpc.PodNetworkStub(ch).SetupPod(
            nodelocal_pb2.SetupPodRequest(
                pod=pod_pb2.Pod(metadata=meta_pb2.ObjectMeta(name="a1", namespace="default", uid=a1.uid)),
                netns_path=a1.netns_path,
            )
        )
    assert again.ip == a1.ip
    assert vxlan_cluster.probe(pods["a1"], "ping", pods["a2"].ip).ok


def test_pod_to_pod_same_and_across_nodes_without_nat(vxlan_cluster: NetCluster, pods: dict[str, Pod]) -> None:
    c = vxlan_cluster
    a1 = pods["a1"]
    assert c.probe(a1, "ping", pods["a2"].ip).ok
    for target in ("b1", "c1"):
        r = c.probe(a1, "ping", pods[target].ip)
        assert r.ok, r.detail
        # The server sees the client's own pod IP: no NAT between pods.
        assert c.http_get(a1, f"{pods[target].ip}:8080") == f"{target} {a1.ip}"
    assert c.probe(pods["b1"], "ping", pods["c1"].ip).ok
    # Node to pod (another node's pod).
    assert c.node_probe("node1", "ping", pods["c1"].ip).ok


def test_clusterip_balances_over_endpoints(vxlan_cluster: NetCluster, pods: dict[str, Pod]) -> None:
    c = vxlan_cluster
    c.add_service("web", "10.96.0.20", [pods["a2"], pods["b1"], pods["c1"]])
    a1 = pods["a1"]
    wait_until(lambda: c.http_get(a1, "10.96.0.20:80"), timeout=10)
    counts: collections.Counter[str] = collections.Counter()
    for _ in range(60):
        body = c.http_get(a1, "10.96.0.20:80")
        counts[body.split(" ")[0]] += 1
    assert set(counts) == {"a2", "b1", "c1"}, counts
    assert min(counts.values()) >= 6, counts
    # Hairpin: a backend reaching its own service through the ClusterIP.
    wait_until(lambda: any(c.http_get(pods["a2"], "10.96.0.20:80").startswith("a2") for _ in range(10)), timeout=10)


def test_session_affinity_sticks(vxlan_cluster: NetCluster, pods: dict[str, Pod]) -> None:
    c = vxlan_cluster
    c.add_service("sticky", "10.96.0.21", [pods["a2"], pods["b1"], pods["c1"]], affinity=True)
    a1 = pods["a1"]
    wait_until(lambda: c.http_get(a1, "10.96.0.21:80"), timeout=10)
    seen = {c.http_get(a1, "10.96.0.21:80").split(" ")[0] for _ in range(20)}
    assert len(seen) == 1, seen


def test_nodeport_answers_on_every_node(vxlan_cluster: NetCluster, pods: dict[str, Pod]) -> None:
    c = vxlan_cluster
    c.add_service("np", "10.96.0.22", [pods["b1"]], node_port=30080)
    for n in c.lab.nodes:
        body = wait_until(lambda n=n: outside_get(c.lab, f"http://{n.ip}:30080/"), timeout=10)
        assert body.startswith("b1 "), body


def test_dns_resolves(vxlan_cluster: NetCluster, pods: dict[str, Pod]) -> None:
    c = vxlan_cluster
    c.add_service("named", "10.96.0.23", [pods["b1"]])
    a1 = pods["a1"]
    r = wait_probe(c, a1, "dns", "named.default.svc.cluster.local")
    assert list(r.answers) == ["10.96.0.23"]
    r = c.probe(a1, "dns", "missing.default.svc.cluster.local")
    assert not r.ok and "NXDOMAIN" in r.detail
    # Another node's agent learns of the Service through its own informers: allow it a moment.
    r = wait_probe(c, pods["c1"], "dns", "b1.named.default.svc.cluster.local")
    assert list(r.answers) == [pods["b1"].ip]


def test_restart_keeps_addresses_and_rules(vxlan_cluster: NetCluster, pods: dict[str, Pod]) -> None:
    c = vxlan_cluster
    gone = c.add_pod("node2", "gone")
    c.stop_agent("node2")
    # A pod whose namespace vanished while the agent was down (no TeardownPod): its address is freed.
    from tests.support.netlab import run

    run(["ip", "netns", "del", gone.netns])
    c.start_agent("node2")
    wait_until(lambda: gone.ip not in {p.ip for p in c.state("node2").pods}, timeout=10)
    b1 = pods["b1"]
    assert wait_until(lambda: c.http_get(b1, "10.96.0.20:80"), timeout=10)
    extra = c.add_pod("node2", "b2")
    assert extra.ip not in {b1.ip}
    c.remove_pod(extra)
    c.remove_pod(extra)  # idempotent
    st = c.state("node2")
    assert extra.ip not in {p.ip for p in st.pods}


def test_removed_node_cleans_its_overlay(vxlan_cluster: NetCluster, pods: dict[str, Pod]) -> None:
    c = vxlan_cluster
    assert c.client is not None
    st = c.state("node1")
    node3_mac = c.client.get(node_pb2.Node, "node3", namespace=None).metadata.annotations["pinnace.io/vtep-mac"]
    assert ("fdb", node3_mac) in {(e.kind, e.key) for e in st.overlay}
    c.client.delete(node_pb2.Node, "node3", namespace=None)

    def gone() -> bool:
        s = c.state("node1")
        keys = {(e.kind, e.key) for e in s.overlay}
        return ("route", "10.244.3.0/24") not in keys and ("fdb", node3_mac) not in keys

    wait_until(gone, timeout=10)
    assert ("route", "10.244.2.0/24") in {(e.kind, e.key) for e in c.state("node1").overlay}


def test_cleanup_removes_everything(vxlan_cluster: NetCluster, pods: dict[str, Pod]) -> None:
    import sys

    from tests.e2e.netagent.harness import REPO

    c = vxlan_cluster
    ns = c.lab.node("node3").netns
    assert "PINNACE-SERVICES" in c.lab.exec(ns, "iptables-save", "-t", "nat")
    c.stop_agent("node3")
    c.lab.exec(
        ns,
        "sh",
        "-c",
        f"cd {REPO} && {sys.executable} -m services.netagent --node-name node3 --store 127.0.0.1:1 --cleanup",
    )
    assert "PINNACE" not in c.lab.exec(ns, "iptables-save", "-t", "nat")
    assert "pinnace.1" not in c.lab.ip(ns, "link", "show")
    assert "proto 165" not in c.lab.ip(ns, "route", "show")
    assert "10.96.0.10" not in c.lab.ip(ns, "addr", "show", "dev", "lo")
