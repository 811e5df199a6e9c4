"""Docker runtime, end to end, on a real dockerd (started here, without iptables or a bridge, if absent)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pinnace.api import pod_pb2
from pinnace.client import AsyncClient
from tests.e2e.nodeagent.conftest import IMAGE, AgentProcess
from tests.e2e.nodeagent.helpers import exec_, logs, make_pod, ready, wait_gone, wait_pod

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]

if shutil.which("dockerd") is None or not os.path.exists("/bin/busybox"):
    pytest.skip("docker runtime tests need dockerd and a static /bin/busybox", allow_module_level=True)


@pytest.fixture
async def client(store: Any) -> AsyncIterator[AsyncClient]:
    c = AsyncClient(store.endpoints)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
def docker_agent(agent_factory: Any, docker_host: str, image: str, node_name: str) -> Iterator[AgentProcess]:
    old = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = docker_host
    a: AgentProcess = agent_factory(runtime="docker", crashloop_backoff=1)
    try:
        yield a
    finally:
        a.stop()
        if old is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = old
        import docker

        cl = docker.DockerClient(base_url=docker_host)
        for c in cl.containers.list(all=True, filters={"label": f"pinnace.node={node_name}"}):
            c.remove(force=True)
        cl.close()


def _containers(docker_host: str, node: str) -> list[Any]:
    import docker

    cl = docker.DockerClient(base_url=docker_host)
    try:
        return list(cl.containers.list(all=True, filters={"label": f"pinnace.node={node}"}))
    finally:
        cl.close()


async def test_docker_pod_ready_logs_exec_delete(
    client: AsyncClient, docker_agent: AgentProcess, docker_host: str, tmp_path: Path
) -> None:
    pod = make_pod(
        "dweb",
        docker_agent.node,
        ["sh", "-c", "echo hello-from-docker > /www/index.html && echo started && exec httpd -f -p 8080 -h /www"],
        image=IMAGE,
    )
    c = pod.spec.containers[0]
    c.readiness_probe.http_get.port.int_val = 8080
    c.readiness_probe.period_seconds = 1
    c.liveness_probe.exec.command.extend(["cat", "/www/index.html"])
    c.liveness_probe.period_seconds = 1
    c.resources.limits["memory"].value = "64Mi"
    c.resources.limits["cpu"].value = "250m"
    c.env.add(name="GREETING", value="hi-$(HOSTNAME)")
    await client.create(pod)
    p = await wait_pod(client, "dweb", ready, 60, "to be Ready")
    cs = p.status.container_statuses[0]
    assert cs.container_id.startswith("docker://") and cs.restart_count == 0
    conts = _containers(docker_host, docker_agent.node)
    roles = sorted(x.labels["pinnace.role"] for x in conts)
    assert roles == ["container", "sandbox"]
    app = next(x for x in conts if x.labels["pinnace.role"] == "container")
    sandbox = next(x for x in conts if x.labels["pinnace.role"] == "sandbox")
    assert app.attrs["HostConfig"]["Memory"] == 64 << 20
    assert app.attrs["HostConfig"]["NanoCpus"] == 250_000_000
    assert app.attrs["HostConfig"]["NetworkMode"] == f"container:{sandbox.id}"
    assert sandbox.attrs["HostConfig"]["NetworkMode"] == "none"
    # served in the sandbox's network namespace
    pid = sandbox.attrs["State"]["Pid"]
    r = subprocess.run(
        ["nsenter", f"--net=/proc/{pid}/ns/net", "/bin/busybox", "wget", "-qO-", "http://127.0.0.1:8080/"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert r.stdout.strip() == "hello-from-docker", r.stderr
    out = await logs(docker_agent.port, "dweb")
    assert b"started" in out
    code, stdout, _ = await exec_(docker_agent.port, "dweb", ["sh", "-c", "echo $GREETING; exit 4"])
    assert code == 4 and stdout.strip() == b"hi-dweb"
    code, stdout, _ = await exec_(docker_agent.port, "dweb", ["cat"], stdin=b"through docker\n")
    assert code == 0 and stdout == b"through docker\n"
    await client.delete(pod_pb2.Pod, "dweb", "default")
    await wait_gone(client, "dweb", 30)
    for _ in range(50):
        if not _containers(docker_host, docker_agent.node):
            break
        await asyncio.sleep(0.1)
    assert _containers(docker_host, docker_agent.node) == []


async def test_docker_agent_restart_adopts(client: AsyncClient, docker_agent: AgentProcess, docker_host: str) -> None:
    await client.create(make_pod("dkeep", docker_agent.node, ["sleep", "600"], image=IMAGE))
    p = await wait_pod(client, "dkeep", lambda p: p.status.phase == "Running", 60, "to run")
    cid = p.status.container_statuses[0].container_id
    docker_agent.stop()
    docker_agent.start()
    await asyncio.sleep(3)
    p = await client.get(pod_pb2.Pod, "dkeep", "default")
    assert p.status.container_statuses[0].container_id == cid
    assert len(_containers(docker_host, docker_agent.node)) == 2
    await client.delete(pod_pb2.Pod, "dkeep", "default")
    await wait_gone(client, "dkeep", 30)
