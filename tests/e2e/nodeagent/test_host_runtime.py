"""Host runtime, end to end: a real store, a real node agent process, real namespaces and cgroups."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pinnace.api import node_pb2, pod_pb2
from pinnace.client import AsyncClient
from services.nodeagent import mounts
from tests.e2e.nodeagent.conftest import AgentProcess, pod_cgroups
from tests.e2e.nodeagent.helpers import (
    condition,
    exec_,
    in_netns,
    logs,
    make_pod,
    netns_of,
    pids_with_marker,
    ready,
    running,
    wait_gone,
    wait_pod,
)

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]


@pytest.fixture
async def client(store: Any) -> AsyncIterator[AsyncClient]:
    c = AsyncClient(store.endpoints)
    try:
        yield c
    finally:
        await c.close()


def http_pod(node: str, marker: str) -> pod_pb2.Pod:
    pod = make_pod("web", node, ["python3", "-m", "http.server", "8080", "--bind", "127.0.0.1"], env={"MARKER": marker})
    c = pod.spec.containers[0]
    c.ports.add(name="http", container_port=8080)
    c.readiness_probe.http_get.port.str_val = "http"
    c.readiness_probe.period_seconds = 1
    c.liveness_probe.tcp_socket.port.int_val = 8080
    c.liveness_probe.initial_delay_seconds = 1
    c.liveness_probe.period_seconds = 1
    c.resources.limits["memory"].value = "128Mi"
    c.resources.limits["cpu"].value = "500m"
    return pod


async def test_node_registers_with_lease(client: AsyncClient, agent: AgentProcess) -> None:
    for _ in range(100):
        try:
            node = await client.get(node_pb2.Node, agent.node, None)
            if node.status.conditions:
                break
        except Exception:
            pass
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"node not registered\n{agent.tail()}")
    assert node.metadata.labels["kubernetes.io/hostname"] == agent.node
    assert node.metadata.labels["pinnace.io/nfs-client"] in ("true", "false")
    assert int(node.status.capacity["pods"].value) == 110
    assert int(node.status.capacity["cpu"].value) == os.cpu_count()
    assert node.status.daemon_endpoints.kubelet_endpoint.port == agent.port
    types = {c.type: c.status for c in node.status.conditions}
    assert types["Ready"] == "True" and types["MemoryPressure"] == "False"
    assert {a.type for a in node.status.addresses} == {"InternalIP", "Hostname"}
    from pinnace.api import cluster_pb2

    for _ in range(50):
        try:
            lease = await client.get(cluster_pb2.Lease, agent.node, "kube-node-lease")
            break
        except Exception:
            await asyncio.sleep(0.1)
    assert lease.spec.holder_identity == agent.node


async def test_http_pod_ready_serves_logs_exec_and_cleans_up(client: AsyncClient, agent: AgentProcess) -> None:
    marker = uuid.uuid4().hex
    await client.create(http_pod(agent.node, marker))
    pod = await wait_pod(client, "web", ready, 30, "to be Ready")
    assert pod.status.phase == "Running"
    assert pod.status.host_ip == "127.0.0.1"
    assert pod.status.qos_class == "Guaranteed"
    assert pod.status.start_time.seconds > 0
    cs = pod.status.container_statuses[0]
    assert cs.ready and cs.started and cs.restart_count == 0 and cs.state.running.started_at.seconds > 0
    assert {c.type for c in pod.status.conditions} >= {"PodScheduled", "Initialized", "ContainersReady", "Ready"}
    ns = netns_of(pod)
    assert os.path.exists(f"/run/netns/{ns}")
    # served inside the pod's network namespace (no netagent here: loopback only)
    r = in_netns(
        ns, "python3", "-c", "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:8080/').status)"
    )
    assert r.stdout.strip() == "200", r.stderr
    # and not on the host
    r = subprocess.run(
        ["python3", "-c", "import socket;socket.create_connection(('127.0.0.1',8080),1)"], capture_output=True
    )
    assert r.returncode != 0
    # cgroup limits applied
    cgs = pod_cgroups(agent.node)
    assert len(cgs) >= 1
    mem = [c for c in cgs if "/memory/" in c]
    if mem:
        limit = open(os.path.join(mem[0], "main", "memory.limit_in_bytes")).read().strip()
        assert int(limit) == 128 << 20
        cpu = next(c for c in cgs if "/cpu/" in c)
        assert open(os.path.join(cpu, "main", "cpu.cfs_quota_us")).read().strip() == "50000"
        pids = open(os.path.join(mem[0], "main", "cgroup.procs")).read().split()
        assert len(pids) >= 1  # the server runs inside its container cgroup
    else:
        d = cgs[0]
        assert open(os.path.join(d, "main", "memory.max")).read().strip() == str(128 << 20)
        assert open(os.path.join(d, "main", "cpu.max")).read().split()[0] == "50000"
    # logs through the NodeAgent API (http.server logs requests to stderr)
    out = await logs(agent.port, "web")
    assert b'"GET / HTTP/1.1" 200' in out, out
    tail = await logs(agent.port, "web", tail_lines=1, timestamps=True)
    assert tail.count(b"\n") == 1 and tail[:4].isdigit()
    # exec: env, namespaces, stdin, tty
    code, stdout, _ = await exec_(agent.port, "web", ["sh", "-c", "echo $MARKER; exit 3"])
    assert code == 3 and stdout.strip() == marker.encode()
    code, stdout, _ = await exec_(agent.port, "web", ["cat", "/proc/sys/kernel/hostname"])
    assert code == 0 and stdout.strip() == b"web"  # the pod's own UTS namespace
    code, stdout, _ = await exec_(agent.port, "web", ["sh", "-c", "cat /proc/self/cgroup"])
    assert code == 0 and (b"/pod" + pod.metadata.uid.encode() + b"/main") in stdout, stdout
    code, stdout, _ = await exec_(agent.port, "web", ["cat"], stdin=b"piped input\n")
    assert code == 0 and stdout == b"piped input\n"
    code, stdout, _ = await exec_(agent.port, "web", ["sh", "-c", "tty >/dev/null && echo is-a-tty"], tty=True)
    assert code == 0 and b"is-a-tty" in stdout
    code, stdout, _ = await exec_(
        agent.port, "web", ["python3", "-c", "import socket;socket.create_connection(('127.0.0.1',8080),1);print('ok')"]
    )
    assert code == 0 and stdout.strip() == b"ok"
    # the same through the CLI
    store = ",".join(agent.store)
    cli = [sys.executable, "-m", "pinnace.cli.main"]
    r = await asyncio.to_thread(
        subprocess.run,
        [*cli, "logs", "web", "--store", store, "--insecure", "--tail", "1"],
        capture_output=True,
        timeout=30,
    )
    assert r.returncode == 0 and b"GET / HTTP/1.1" in r.stdout, r.stderr
    r = await asyncio.to_thread(
        subprocess.run,
        [*cli, "exec", "--store", store, "--insecure", "-i", "web", "--", "sh", "-c", "cat; exit 5"],
        input=b"via-cli",
        capture_output=True,
        timeout=30,
    )
    assert r.returncode == 5 and r.stdout == b"via-cli", r.stderr
    # deletion: graceful, then every trace is gone
    pids = pids_with_marker(marker) or []
    await client.delete(pod_pb2.Pod, "web", "default")
    await wait_gone(client, "web", 20)
    await asyncio.sleep(0.2)
    assert not os.path.exists(f"/run/netns/{ns}")
    assert pod_cgroups(agent.node) == []
    assert not [p for p in pids if os.path.exists(f"/proc/{p}")]
    assert not (agent.data_dir / "pods" / pod.metadata.uid).exists()
    r = subprocess.run(["pgrep", "-f", "http.server 8080 --bind 127.0.0.1"], capture_output=True)
    assert r.returncode != 0, r.stdout


async def test_liveness_failure_restarts(client: AsyncClient, agent: AgentProcess, tmp_path: Path) -> None:
    flag = tmp_path / "healthy"
    flag.write_text("ok")
    pod = make_pod("live", agent.node, ["sleep", "600"], grace=1)
    c = pod.spec.containers[0]
    c.liveness_probe.exec.command.extend(["test", "-f", str(flag)])
    c.liveness_probe.period_seconds = 1
    c.liveness_probe.failure_threshold = 1
    c.liveness_probe.initial_delay_seconds = 2
    await client.create(pod)
    await wait_pod(client, "live", ready, 20, "to be Ready")
    flag.unlink()
    p = await wait_pod(client, "live", lambda p: p.status.container_statuses[0].restart_count >= 1, 20, "to restart")
    flag.write_text("ok")
    last = p.status.container_statuses[0].last_state.terminated
    assert last.exit_code in (137, 143), last
    p = await wait_pod(client, "live", ready, 20, "to be Ready again")
    assert p.status.container_statuses[0].restart_count == 1
    await client.delete(pod_pb2.Pod, "live", "default")
    await wait_gone(client, "live")


async def test_memory_hog_is_oomkilled(client: AsyncClient, agent: AgentProcess) -> None:
    pod = make_pod(
        "hog",
        agent.node,
        ["python3", "-c", "import time\nx=[]\nwhile True:\n  x.append(bytearray(8<<20))\n  time.sleep(0.01)"],
        restart_policy="Never",
    )
    pod.spec.containers[0].resources.limits["memory"].value = "48Mi"
    await client.create(pod)
    p = await wait_pod(client, "hog", lambda p: p.status.phase == "Failed", 30, "to fail")
    t = p.status.container_statuses[0].state.terminated
    assert t.reason == "OOMKilled" and t.exit_code == 137, t
    assert condition(p, "Ready") == "False"
    await client.delete(pod_pb2.Pod, "hog", "default")
    await wait_gone(client, "hog")


async def test_crashloop_backoff_and_init_and_env(client: AsyncClient, agent: AgentProcess) -> None:
    pod = make_pod("crash", agent.node, ["sh", "-c", "echo crashing $(GREETING) '$$(NAME)'; exit 2"], env={"NAME": "x"})
    c = pod.spec.containers[0]
    c.env.add(name="GREETING", value="hello-$(NAME)")
    c.args.extend([])
    init = pod.spec.init_containers.add(name="init", image="busybox", command=["sh", "-c", "echo init-ran"])
    assert init
    await client.create(pod)
    p = await wait_pod(
        client,
        "crash",
        lambda p: (
            bool(p.status.container_statuses)
            and p.status.container_statuses[0].state.waiting.reason == "CrashLoopBackOff"
        ),
        20,
        "to crash-loop",
    )
    cs = p.status.container_statuses[0]
    assert cs.last_state.terminated.exit_code == 2 and cs.restart_count >= 1
    assert p.status.init_container_statuses[0].state.terminated.reason == "Completed"
    assert condition(p, "Initialized") == "True"
    out = await logs(agent.port, "crash", previous=True)
    assert out.startswith(b"crashing hello-x $(NAME)\n"), out
    await client.delete(pod_pb2.Pod, "crash", "default")
    await wait_gone(client, "crash")


async def test_restart_policy_never_succeeds(client: AsyncClient, agent: AgentProcess) -> None:
    pod = make_pod("job", agent.node, ["sh", "-c", "echo done"], restart_policy="Never")
    pod.spec.containers[0].working_dir = "/tmp"
    await client.create(pod)
    p = await wait_pod(client, "job", lambda p: p.status.phase == "Succeeded", 20, "to succeed")
    t = p.status.container_statuses[0].state.terminated
    assert t.exit_code == 0 and t.reason == "Completed"
    for _ in range(50):  # a finished pod gives its network namespace back
        if not os.path.exists(f"/run/netns/{netns_of(p)}"):
            break
        await asyncio.sleep(0.1)
    assert not os.path.exists(f"/run/netns/{netns_of(p)}")
    assert (await logs(agent.port, "job")) == b"done\n"
    await client.delete(pod_pb2.Pod, "job", "default")
    await wait_gone(client, "job")


async def test_agent_restart_adopts_and_collects_orphans(
    client: AsyncClient, agent: AgentProcess, tmp_path: Path
) -> None:
    marker = uuid.uuid4().hex
    await client.create(make_pod("keep", agent.node, ["sleep", "600"], env={"M": marker}))
    await client.create(make_pod("orphan", agent.node, ["sleep", "601"]))
    keep = await wait_pod(client, "keep", running, 20, "to run")
    orphan = await wait_pod(client, "orphan", running, 20, "to run")
    cid = keep.status.container_statuses[0].container_id
    agent.stop()
    # while the agent is down: the orphan's pod object goes away for good
    await client.delete(pod_pb2.Pod, "orphan", "default", grace_period_seconds=0)
    await wait_gone(client, "orphan", 10)
    agent.start()
    await asyncio.sleep(2.0)
    orphan_ns = netns_of(orphan)
    orphan_dir = agent.data_dir / "pods" / orphan.metadata.uid
    for _ in range(100):
        if not os.path.exists(f"/run/netns/{orphan_ns}") and not orphan_dir.exists():
            break
        await asyncio.sleep(0.1)
    assert not os.path.exists(f"/run/netns/{orphan_ns}"), agent.tail()
    assert not (agent.data_dir / "pods" / orphan.metadata.uid).exists()
    assert subprocess.run(["pgrep", "-f", "sleep 601"], capture_output=True).returncode != 0
    p = await client.get(pod_pb2.Pod, "keep", "default")
    cs = p.status.container_statuses[0]
    assert cs.container_id == cid and cs.restart_count == 0 and cs.state.running.started_at.seconds > 0
    assert len(subprocess.run(["pgrep", "-x", "sleep"], capture_output=True, text=True).stdout.split()) >= 1
    code, out, _ = await exec_(agent.port, "keep", ["sh", "-c", "echo $M"])
    assert code == 0 and out.strip() == marker.encode()
    await client.delete(pod_pb2.Pod, "keep", "default")
    await wait_gone(client, "keep")
    assert pod_cgroups(agent.node) == []


async def test_volume_mounts_with_volagent(client: AsyncClient, agent_factory: Any, tmp_path: Path) -> None:
    from tests.e2e.nodeagent.fake_volagent import FakeVolagent

    agent: AgentProcess = agent_factory(start=False)
    vol = FakeVolagent(str(agent.run_dir / "volagent.sock"), str(tmp_path / "vols"))
    pod = make_pod(
        "vol",
        agent.node,
        [
            "sh",
            "-c",
            "echo hi > /mnt/pn-e2e-rw/f && cat /mnt/pn-e2e-rw/f && "
            "(echo x > /mnt/pn-e2e-ro/g || echo ro-ok) && sleep 600",
        ],
    )
    pod.spec.volumes.add(name="rw").empty_dir.medium = ""
    pod.spec.volumes.add(name="ro").empty_dir.medium = ""
    c = pod.spec.containers[0]
    c.volume_mounts.add(name="rw", mount_path="/mnt/pn-e2e-rw")
    c.volume_mounts.add(name="ro", mount_path="/mnt/pn-e2e-ro", read_only=True)
    agent.start()
    await client.create(pod)
    # without a volagent the pod waits with a clear reason
    p = await wait_pod(
        client,
        "vol",
        lambda p: (
            bool(p.status.container_statuses)
            and p.status.container_statuses[0].state.waiting.reason == "VolumesNotReady"
        ),
        20,
        "to wait for volumes",
    )
    assert "volume agent" in p.status.message
    await vol.start()
    try:
        p = await wait_pod(client, "vol", running, 20, "to run")
        for _ in range(50):
            out = await logs(agent.port, "vol")
            if b"ro-ok" in out:
                break
            await asyncio.sleep(0.1)
        assert out.startswith(b"hi\n") and b"ro-ok" in out, out
        assert (tmp_path / "vols" / p.metadata.uid / "rw" / "f").read_text() == "hi\n"
        # the host does not see the container's mounts
        assert not mounts.mounts_under("/mnt/pn-e2e-rw")
        await client.delete(pod_pb2.Pod, "vol", "default")
        await wait_gone(client, "vol")
        assert vol.unmounted == [p.metadata.uid]
        assert not os.path.exists("/mnt/pn-e2e-rw") and not os.path.exists("/mnt/pn-e2e-ro")
    finally:
        await vol.stop()


async def test_emptydir_and_memory_volume_with_real_volagent(
    client: AsyncClient, agent_factory: Any, tmp_path: Path
) -> None:
    agent: AgentProcess = agent_factory()
    vol_log = open(tmp_path / "volagent.log", "wb")
    vol = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.volagent",
            "--node-name",
            agent.node,
            "--run-dir",
            str(agent.run_dir),
            "--data-dir",
            str(agent.data_dir),
            "--no-binder",
            "--store",
            ",".join(agent.store),
            "--log-level",
            "debug",
        ],
        stdout=vol_log,
        stderr=subprocess.STDOUT,
    )
    try:
        pod = make_pod(
            "ed",
            agent.node,
            [
                "sh",
                "-c",
                "echo data > /mnt/pn-e2e-ed/file && grep -q ' /mnt/pn-e2e-mem ' /proc/mounts "
                "&& echo mem-mounted && sleep 600",
            ],
        )
        pod.spec.volumes.add(name="scratch").empty_dir.medium = ""
        pod.spec.volumes.add(name="mem").empty_dir.medium = "Memory"
        c = pod.spec.containers[0]
        c.volume_mounts.add(name="scratch", mount_path="/mnt/pn-e2e-ed")
        c.volume_mounts.add(name="mem", mount_path="/mnt/pn-e2e-mem")
        await client.create(pod)
        p = await wait_pod(client, "ed", running, 40, "to run")
        for _ in range(50):
            out = await logs(agent.port, "ed")
            if b"mem-mounted" in out:
                break
            await asyncio.sleep(0.1)
        assert b"mem-mounted" in out, out
        pod_dir = agent.data_dir / "pods" / p.metadata.uid
        assert mounts.mounts_under(str(pod_dir))  # the tmpfs emptyDir
        await client.delete(pod_pb2.Pod, "ed", "default")
        await wait_gone(client, "ed", 30)
        await asyncio.sleep(0.3)
        assert not mounts.mounts_under(str(pod_dir))
        assert not pod_dir.exists()
        assert not os.path.exists("/mnt/pn-e2e-ed")
    finally:
        vol.terminate()
        try:
            vol.wait(10)
        except subprocess.TimeoutExpired:
            vol.kill()
        vol_log.close()
        for m in reversed(mounts.mounts_under(str(agent.data_dir))):
            subprocess.run(["umount", "-l", m], check=False)


async def test_mutual_tls_with_node_identity(tmp_path: Path, node_name: str, agent_factory: Any) -> None:
    """With TLS the agent talks to the store as node:<name> (the store's authorization applies) and
    serves logs/exec over TLS to the CLI."""
    from pinnace.common import tls as tlsmod
    from tests.support.store import start_store

    pki = tmp_path / "pki"
    tlsmod.ensure_cluster_pki(pki)
    tlsmod.issue(pki, "store", "store")
    tlsmod.issue(pki, "admin", "admin")
    tlsmod.issue(pki, f"node-{node_name}", f"node:{node_name}")
    cluster = start_store(tmp_path / "tls-store", wait=False, tls_dir=str(pki))
    try:
        c = AsyncClient(cluster.endpoints, tls=tlsmod.load(pki, "admin"))
        await c.list(pod_pb2.Pod, namespace="default")  # retries until the store answers
        a = AgentProcess(tmp_path / "tls-agent", cluster.endpoints, node_name)
        a.flags.update(tls_dir=str(pki), tls_name=f"node-{node_name}", crashloop_backoff=1)
        a.start()
        try:
            await c.create(make_pod("tlspod", node_name, ["sh", "-c", "echo over-tls; sleep 600"]))
            await wait_pod(c, "tlspod", running, 30, "to run")
            cli = [sys.executable, "-m", "pinnace.cli.main"]
            args = ["--store", ",".join(cluster.endpoints), "--tls-dir", str(pki), "--tls-name", "admin"]
            for _ in range(30):
                r = await asyncio.to_thread(
                    subprocess.run, [*cli, "logs", *args, "tlspod"], capture_output=True, timeout=30
                )
                if b"over-tls" in r.stdout:
                    break
                await asyncio.sleep(0.2)
            assert r.returncode == 0 and r.stdout == b"over-tls\n", r.stderr
            await c.delete(pod_pb2.Pod, "tlspod", "default")
            await wait_gone(c, "tlspod", 20)
        finally:
            await c.close()
            a.stop()
            from tests.e2e.nodeagent.conftest import cleanup_node

            assert cleanup_node(a) == []
    finally:
        cluster.stop()


async def test_max_pods_admission(client: AsyncClient, agent_factory: Any) -> None:
    agent: AgentProcess = agent_factory(max_pods=1)
    await client.create(make_pod("first", agent.node, ["sleep", "600"]))
    await wait_pod(client, "first", running, 20, "to run")
    await client.create(make_pod("second", agent.node, ["sleep", "601"]))
    p = await wait_pod(client, "second", lambda p: p.status.phase == "Failed", 20, "to be refused")
    assert p.status.reason == "OutOfpods"
    assert subprocess.run(["pgrep", "-f", "sleep 601"], capture_output=True).returncode != 0
    for name in ("first", "second"):
        await client.delete(pod_pb2.Pod, name, "default")
    for name in ("first", "second"):
        await wait_gone(client, name)
