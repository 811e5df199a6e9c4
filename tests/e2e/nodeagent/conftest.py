"""Fixtures for node agent end-to-end tests: a real store, a real agent process, cleanup of every trace."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.dockerd import docker_ok, private_dockerd
from tests.support.store import REPO, free_port, start_store


@pytest.fixture(scope="session", autouse=True)
def _need_root() -> None:
    """Every test here needs root; skip (never silently pass) without it."""
    if os.geteuid() != 0:
        pytest.skip("node agent e2e tests need root (network namespaces, mounts, cgroups)")


CGROUP = "/sys/fs/cgroup"


def node_cgroup_dirs(node: str) -> list[str]:
    v2 = os.path.exists(os.path.join(CGROUP, "cgroup.controllers"))
    if v2:
        return [os.path.join(CGROUP, "pinnace.slice", node)]
    return [os.path.join(CGROUP, c, "pinnace", node) for c in ("memory", "cpu", "pids")]


def pod_cgroups(node: str) -> list[str]:
    out = []
    for d in node_cgroup_dirs(node):
        if os.path.isdir(d):
            out += [os.path.join(d, e) for e in os.listdir(d) if e.startswith("pod")]
    return out


def kill_cgroup_tree(path: str) -> None:
    """SIGKILL everything below a cgroup dir and remove the dirs, deepest first."""
    for root, _dirs, _files in sorted(os.walk(path), key=lambda t: -t[0].count("/")):
        with contextlib.suppress(OSError), open(os.path.join(root, "cgroup.procs")) as f:
            for pid in f.read().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
    for root, _dirs, _files in sorted(os.walk(path), key=lambda t: -t[0].count("/")):
        for _ in range(50):
            try:
                os.rmdir(root)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)


class AgentProcess:
    """`python -m services.nodeagent` for one node, restartable."""

    def __init__(self, base: Path, store: list[str], node: str, runtime: str = "host", **flags: Any) -> None:
        self.base = base
        self.node = node
        self.store = store
        self.runtime = runtime
        self.run_dir = base / "run"
        self.data_dir = base / "data"
        self.port = free_port()
        self.flags = flags
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = base / "agent.log"
        self.starts = 0

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "services.nodeagent",
            "--node-name",
            self.node,
            "--store",
            ",".join(self.store),
            "--runtime",
            self.runtime,
            "--run-dir",
            str(self.run_dir),
            "--data-dir",
            str(self.data_dir),
            "--address",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--listen-host",
            "127.0.0.1",
            "--log-level",
            "debug",
        ]
        for k, v in self.flags.items():
            cmd += ["--" + k.replace("_", "-"), str(v)]
        return cmd

    def start(self) -> None:
        self.starts += 1
        self.base.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(f"\n==== start {self.starts} ====\n".encode())
        self.proc = subprocess.Popen(self.command(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    cluster = start_store(tmp_path / "store")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def node_name() -> str:
    return "e2e-" + uuid.uuid4().hex[:8]


def cleanup_node(agent: AgentProcess) -> list[str]:
    """Force-remove anything the agent left behind; returns what was found (leftovers are a bug)."""
    found: list[str] = []
    for cg in pod_cgroups(agent.node):
        found.append(cg)
        kill_cgroup_tree(cg)
    pods = agent.data_dir / "pods"
    if pods.is_dir():
        for d in pods.iterdir():
            ns = "pn-" + d.name.replace("-", "")[:12]
            if os.path.exists(f"/run/netns/{ns}"):
                found.append(ns)
                subprocess.run(["ip", "netns", "del", ns], check=False)
            created = d / "created-mountpoints"
            if created.exists():
                for p in sorted(created.read_text().split(), key=len, reverse=True):
                    with contextlib.suppress(OSError):
                        os.rmdir(p)
    for d in node_cgroup_dirs(agent.node):
        kill_cgroup_tree(d)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(d))  # the shared pinnace parent, when no other node uses it
    return found


@pytest.fixture
def agent_factory(tmp_path: Path, store: Any, node_name: str) -> Iterator[Any]:
    agents: list[AgentProcess] = []

    def make(runtime: str = "host", start: bool = True, **flags: Any) -> AgentProcess:
        a = AgentProcess(tmp_path / f"agent{len(agents)}", store.endpoints, node_name, runtime, **flags)
        agents.append(a)
        if start:
            a.start()
        return a

    try:
        yield make
    finally:
        for a in agents:
            a.stop()
        for a in agents:
            cleanup_node(a)
            with contextlib.suppress(OSError):
                shutil.rmtree(a.data_dir / "pods", ignore_errors=True)


@pytest.fixture
def agent(agent_factory: Any) -> AgentProcess:
    a: AgentProcess = agent_factory(crashloop_backoff=1)
    return a


# -- Docker -----------------------------------------------------------------------------
IMAGE = "pinnace-test/busybox:e2e"


@pytest.fixture(scope="module")
def docker_host() -> Iterator[str]:
    """The running dockerd, or the tests' private one (no iptables, no bridge: network safety)."""
    default = "unix:///var/run/docker.sock"
    if os.path.exists("/var/run/docker.sock") and docker_ok(default):
        yield default
        return
    try:
        with private_dockerd() as host:
            yield host
    except RuntimeError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def image(docker_host: str) -> str:
    """A tiny busybox image built locally with `docker import` (no registry needed)."""
    import docker

    client = docker.DockerClient(base_url=docker_host)
    try:
        client.images.get(IMAGE)
        return IMAGE
    except docker.errors.ImageNotFound:
        pass
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "proc", "sys", "dev", "etc", "tmp", "www"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add("/bin/busybox", arcname="bin/busybox")
        for a in applets:
            if a != "busybox":
                link = tarfile.TarInfo(f"bin/{a}")
                link.type = tarfile.SYMTYPE
                link.linkname = "busybox"
                tar.addfile(link)
    repo, tag = IMAGE.split(":")
    client.api.import_image_from_data(buf.getvalue(), repository=repo, tag=tag, changes=["ENV PATH=/bin"])
    client.close()
    return IMAGE
