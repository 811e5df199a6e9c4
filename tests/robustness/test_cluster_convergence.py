"""Cluster-level convergence under component restarts, on a real 3-node lab (`pinnace up`).

While a Deployment is scaled and a Service exists, the scheduler, the controllers and every
node's agents are killed (SIGKILL, PIDs from the supervisor's status.json; the supervisor
restarts them). After that: every component is running again, the Deployment has its replicas
ready, the Endpoints equal the ready pods' IPs, and on every node the iptables nat rules for the
Service DNAT to exactly those endpoints. Root only; the cluster lives in network namespaces with
the test prefix "pnr" and no host access, and `pinnace down` must leave nothing behind.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from pinnace.api import apps_pb2, pod_pb2, service_pb2
from tests.support.cluster import LabCluster
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the cluster lives in network namespaces"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2"),
]

T = TypeVar("T")
PREFIX = "pnr"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCluster]:
    if os.path.exists(f"/run/netns/{PREFIX}-cp"):
        pytest.skip(f"a test cluster with prefix {PREFIX} is already running")
    c = LabCluster(Path(tmp_path_factory.mktemp("conv")), prefix=PREFIX)
    try:
        c.up()
        yield c
    finally:
        c.down()
        left = c.leftovers()
        assert not left, f"pinnace down left things behind: {left}"


def deployment(replicas: int) -> apps_pb2.Deployment:
    d = apps_pb2.Deployment()
    d.metadata.name = "conv"
    d.metadata.namespace = "default"
    d.spec.replicas = replicas
    d.spec.selector.match_labels["app"] = "conv"
    d.spec.template.metadata.labels["app"] = "conv"
    d.spec.template.spec.termination_grace_period_seconds = 1
    c = d.spec.template.spec.containers.add(name="c", image="busybox", command=["sleep", "3600"])
    c.ports.add(container_port=8080)
    return d


def service() -> service_pb2.Service:
    s = service_pb2.Service()
    s.metadata.name = "conv"
    s.metadata.namespace = "default"
    s.spec.selector["app"] = "conv"
    p = s.spec.ports.add(port=80, protocol="TCP")
    p.target_port.int_val = 8080
    return s


def ready_ips(c: LabCluster) -> set[str]:
    assert c.client is not None
    pods = c.client.list(pod_pb2.Pod, namespace="default", label_selector="app=conv").items
    return {
        p.status.pod_ip
        for p in pods
        if p.status.phase == "Running"
        and p.status.pod_ip
        and not p.metadata.HasField("deletion_timestamp")
        and any(x.type == "Ready" and x.status == "True" for x in p.status.conditions)
    }


def endpoint_ips(c: LabCluster) -> set[str]:
    assert c.client is not None
    ep = c.client.get(service_pb2.Endpoints, "conv", "default")
    return {a.ip for s in ep.subsets for a in s.addresses}


def dnat_targets(c: LabCluster, node: str, cluster_ip: str) -> set[str]:
    """Endpoint IPs the node's nat table sends the Service's cluster IP to."""
    dump = c.in_ns(c.ns(node), "iptables-save", "-t", "nat").stdout
    rules: dict[str, list[str]] = {}
    for line in dump.splitlines():
        if line.startswith("-A "):
            chain, _, rest = line[3:].partition(" ")
            rules.setdefault(chain, []).append(rest)
    svc_chains = {
        m.group(1)
        for r in rules.get("PINNACE-SERVICES", [])
        if f"-d {cluster_ip}/32" in r and (m := re.search(r"-j (\S+)", r))
    }
    out: set[str] = set()
    for svc in svc_chains:
        for r in rules.get(svc, []):
            m = re.search(r"-j (PINNACE-SEP-\S+)", r)
            if m:
                for sr in rules.get(m.group(1), []):
                    d = re.search(r"--to-destination ([\d.]+):8080", sr)
                    if d:
                        out.add(d.group(1))
    return out


def test_converges_after_component_restarts(cluster: LabCluster) -> None:
    client = cluster.client
    assert client is not None
    client.create(deployment(3))
    svc = client.create(service())
    eventually(lambda: len(ready_ips(cluster)) == 3, 120, what="3 ready pods")

    before = {x["name"]: x for x in cluster.status()["components"]}
    victims = [
        n for n in before if n in ("scheduler", "controllers") or n.endswith(("/nodeagent", "/netagent", "/volagent"))
    ]
    assert "scheduler" in victims and any(v.endswith("/nodeagent") for v in victims), sorted(before)

    def kill(names: list[str]) -> None:
        for n in names:
            pid = before[n]["pid"]
            if pid:
                os.kill(pid, signal.SIGKILL)

    # kill the control plane, change the desired state while it is down, then the agents
    kill(["scheduler", "controllers"])
    client.mutate(apps_pb2.Deployment, "conv", "default", lambda d: setattr(d.spec, "replicas", 5))
    time.sleep(1)
    kill([v for v in victims if v.endswith("/nodeagent")])
    time.sleep(1)
    kill([v for v in victims if v.endswith(("/netagent", "/volagent"))])
    client.mutate(apps_pb2.Deployment, "conv", "default", lambda d: setattr(d.spec, "replicas", 4))

    def restarted() -> bool:
        now = {x["name"]: x for x in cluster.status()["components"]}
        return all(
            now[v]["restarts"] > before[v]["restarts"] and now[v]["state"] == "running" and now[v]["pid"]
            for v in victims
        )

    eventually(restarted, 90, what="the supervisor to restart every killed component")
    eventually(lambda: len(ready_ips(cluster)) == 4, 150, what="4 ready pods after the restarts")

    def deployment_done() -> bool:
        d = client.get(apps_pb2.Deployment, "conv", "default")
        return d.status.ready_replicas == 4 and d.status.replicas == 4

    eventually(deployment_done, 60, what="Deployment status at 4 ready replicas")
    eventually(lambda: endpoint_ips(cluster) == ready_ips(cluster), 60, what="Endpoints equal to the ready pods")
    want = ready_ips(cluster)
    for i in range(cluster.nodes):
        node = f"node{i + 1}"

        def programmed(node: str = node) -> bool:
            return dnat_targets(cluster, node, svc.spec.cluster_ip) == want

        eventually(programmed, 60, what=f"iptables on {node} to DNAT {svc.spec.cluster_ip} to {sorted(want)}")
