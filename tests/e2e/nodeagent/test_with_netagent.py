"""Node agent + real netagent on one lab node (its own network namespace): the pod gets an IP from the
node's podCIDR, serves on it, gets the cluster resolv.conf, and its network is released on delete."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pinnace.api import pod_pb2
from pinnace.client import AsyncClient
from tests.e2e.nodeagent.conftest import IMAGE, AgentProcess, cleanup_node
from tests.e2e.nodeagent.helpers import make_pod, netns_of, ready, wait_gone, wait_pod
from tests.support.netlab import Lab, have_tools
from tests.support.store import REPO, free_port

pytestmark = [pytest.mark.root, pytest.mark.timeout(150)]

try:
    from tests.e2e.netagent.harness import STORE_PORT_IN_NODE, NetCluster
except ImportError as e:  # pragma: no cover - the netagent's harness is another part of the tree
    pytest.skip(f"netagent harness unavailable: {e}", allow_module_level=True)


@pytest.fixture
def lab() -> Iterator[Lab]:
    missing = have_tools()
    if missing:
        pytest.skip(missing)
    with Lab(nodes_count=1) as lab:
        yield lab


@pytest.fixture
def net(lab: Lab, store: Any, tmp_path: Path) -> Iterator[NetCluster]:
    port = int(store.endpoints[0].rsplit(":", 1)[1])
    c = NetCluster(lab=lab, store_port=port, workdir=str(tmp_path / "net"))
    os.makedirs(c.workdir, exist_ok=True)
    try:
        c.register_nodes()
        c.start_agent("node1")
        yield c
    finally:
        c.close()


def _start_lab_agent(lab: Lab, net: NetCluster, tmp_path: Path, runtime: str = "host") -> AgentProcess:
    """A node agent inside node1's network namespace (nsenter keeps the host's mounts and cgroups)."""
    n = lab.node("node1")
    a = AgentProcess(tmp_path / "agent", [f"{n.ip}:{STORE_PORT_IN_NODE}"], "node1", runtime)
    a.run_dir = Path(net.run_dir("node1"))
    a.port = free_port()
    a.base.mkdir(parents=True, exist_ok=True)
    cmd = a.command()
    cmd[cmd.index("--address") + 1] = n.ip
    cmd[cmd.index("--listen-host") + 1] = n.ip
    log = open(a.log_path, "ab")
    a.proc = subprocess.Popen(["nsenter", f"--net={n.netns_path}", *cmd], cwd=REPO, stdout=log, stderr=log)
    log.close()
    return a


@pytest.fixture
def lab_agent(lab: Lab, net: NetCluster, tmp_path: Path) -> Iterator[AgentProcess]:
    a = _start_lab_agent(lab, net, tmp_path)
    try:
        yield a
    finally:
        a.stop()
        cleanup_node(a)


@pytest.fixture
async def client(store: Any) -> AsyncIterator[AsyncClient]:
    c = AsyncClient(store.endpoints)
    try:
        yield c
    finally:
        await c.close()


async def test_pod_ip_from_netagent(client: AsyncClient, lab: Lab, net: NetCluster, lab_agent: AgentProcess) -> None:
    n = lab.node("node1")
    pod = make_pod(
        "netweb",
        "node1",
        ["sh", "-c", "cat /etc/resolv.conf; exec python3 -m http.server 8080"],
    )
    c = pod.spec.containers[0]
    c.readiness_probe.http_get.port.int_val = 8080
    c.readiness_probe.period_seconds = 1
    c.env.add(name="MY_IP").value_from.field_ref.field_path = "status.podIP"
    await client.create(pod)
    p = await wait_pod(client, "netweb", ready, 60, "to be Ready")
    assert p.status.host_ip == n.ip
    ip = ipaddress.ip_address(p.status.pod_ip)
    assert ip in ipaddress.ip_network(net.pod_cidr("node1")), p.status.pod_ip
    # reachable on its pod IP from the node's namespace
    out = lab.exec(
        n.netns,
        sys.executable,
        "-c",
        f"import urllib.request;print(urllib.request.urlopen('http://{ip}:8080/',timeout=3).status)",
    )
    assert out.strip() == "200"
    log = lab_agent.data_dir / "pods" / p.metadata.uid / "logs" / "main" / "0.log"
    assert "nameserver" in log.read_text()
    ns = netns_of(p)
    await client.delete(pod_pb2.Pod, "netweb", "default")
    await wait_gone(client, "netweb", 30)
    await asyncio.sleep(0.3)
    assert not os.path.exists(f"/run/netns/{ns}")
    links = lab.ip(n.netns, "-o", "link", "show")
    assert p.metadata.uid.replace("-", "")[:8] not in links


async def test_docker_sandbox_wired_by_netagent(
    client: AsyncClient, lab: Lab, net: NetCluster, tmp_path: Path, docker_host: str, image: str
) -> None:
    """The Docker runtime hands /proc/<sandbox pid>/ns/net to the netagent: the pod gets a lab IP."""
    import docker

    old = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = docker_host
    a = _start_lab_agent(lab, net, tmp_path, runtime="docker")
    dc = docker.DockerClient(base_url=docker_host)
    uid = ""
    try:
        n = lab.node("node1")
        pod = make_pod(
            "dnet", "node1", ["sh", "-c", "echo hi > /www/index.html && exec httpd -f -p 8080 -h /www"], image=IMAGE
        )
        pod.spec.containers[0].readiness_probe.tcp_socket.port.int_val = 8080
        pod.spec.containers[0].readiness_probe.period_seconds = 1
        uid = (await client.create(pod)).metadata.uid
        p = await wait_pod(client, "dnet", ready, 60, "to be Ready")
        assert ipaddress.ip_address(p.status.pod_ip) in ipaddress.ip_network(net.pod_cidr("node1"))
        out = lab.exec(n.netns, "/bin/busybox", "wget", "-qO-", f"http://{p.status.pod_ip}:8080/")
        assert out.strip() == "hi"
        await client.delete(pod_pb2.Pod, "dnet", "default")
        await wait_gone(client, "dnet", 30)
        assert not dc.containers.list(all=True, filters={"label": f"pinnace.pod-uid={uid}"})
    finally:
        a.stop()
        if uid:  # only this test's containers: "node1" may exist in other clusters on this dockerd
            for c in dc.containers.list(all=True, filters={"label": f"pinnace.pod-uid={uid}"}):
                c.remove(force=True)
        dc.close()
        cleanup_node(a)
        if old is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = old
