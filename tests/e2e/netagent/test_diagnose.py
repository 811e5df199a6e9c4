"""`pinnace net diagnose` on a healthy lab passes; breaking one thing at a time names that step.

Uses its own module-scoped lab (see conftest.py).
"""

from __future__ import annotations

import pytest

from pinnace.api import node_pb2
from pinnace.cli.net import FAILED, PASSED, diagnose, render
from services.netagent.proxy import rules
from services.netagent.proxy.model import ServicePort
from tests.e2e.netagent.harness import NetCluster, Pod, wait_until

pytestmark = pytest.mark.root


def first_failure(steps: list) -> int:
    return next((s.number for s in steps if s.status == FAILED), 0)


def run(c: NetCluster, pod: str = "default/d1") -> list:
    return diagnose(c.client, pod=pod, outside=c.lab.outside_ip)


def test_diagnose_healthy_then_broken(vxlan_cluster: NetCluster, pods: dict[str, Pod]) -> None:
    c = vxlan_cluster
    d1 = c.add_pod("node1", "d1")
    d2 = c.add_pod("node1", "d2")
    d3 = c.add_pod("node2", "d3")
    for p in (d2, d3):
        c.serve_http(p, p.name)
    c.add_service("diag", "10.96.0.30", [d2, d3])
    wait_until(lambda: c.http_get(d1, "10.96.0.30:80"), timeout=10)

    def healthy() -> list | None:
        steps = run(c)
        return None if first_failure(steps) else steps

    steps = wait_until(healthy, timeout=15)
    text = render(steps)
    assert [s.status for s in steps] == [PASSED] * 6, text

    # (2) delete the FDB entry node1 holds for node2.
    assert c.client is not None
    mac = c.client.get(node_pb2.Node, "node2", namespace=None).metadata.annotations["pinnace.io/vtep-mac"]
    c.lab.exec(c.lab.node("node1").netns, "bridge", "fdb", "del", mac, "dev", "pinnace.1", "dst", "192.168.250.12")
    steps = run(c)
    assert first_failure(steps) == 2, render(steps)
    assert any("missing fdb" in e for e in steps[1].evidence), render(steps)

    # Touching the Node makes the agent reconcile: the entry comes back.
    def touch(n: node_pb2.Node) -> None:
        n.metadata.labels["touched"] = "1"

    c.client.mutate(node_pb2.Node, "node2", None, touch)
    wait_until(lambda: first_failure(run(c)) == 0, timeout=15)

    # (4) flush the service chain on node1.
    sp = ServicePort("default", "diag", "http", "tcp", "10.96.0.30", 80)
    chain = rules.svc_chain(sp)
    c.lab.exec(c.lab.node("node1").netns, "iptables", "-t", "nat", "-F", chain)
    steps = run(c)
    assert first_failure(steps) == 4, render(steps)
    assert any(f"chain {chain}" in e or "DNAT to []" in e for e in steps[3].evidence), render(steps)

    # (3) stop DNS on node1 (its address goes away), with step 4 still broken: 3 comes first.
    c.lab.ip(c.lab.node("node1").netns, "addr", "del", "10.96.0.10/32", "dev", "lo")
    steps = run(c)
    assert first_failure(steps) == 3, render(steps)
    assert "missing" in " ".join(steps[2].evidence), render(steps)
    # Repair for later tests: the DNS address back, the service chain via a restart of the agent.
    c.lab.ip(c.lab.node("node1").netns, "addr", "add", "10.96.0.10/32", "dev", "lo")
    c.stop_agent("node1")
    c.start_agent("node1")
    wait_until(lambda: first_failure(run(c)) == 0, timeout=15)
