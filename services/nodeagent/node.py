"""The Node object from the real machine (addresses, capacity, labels, info, conditions) and its heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import socket
import time
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api import cluster_pb2, meta_pb2, node_pb2
from pinnace.client import errors
from pinnace.common.capabilities import nfs_client_available
from pinnace.common.logging import get_logger
from services.nodeagent.podstatus import ts

log = get_logger("nodeagent.node")

LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION = 40
VERSION = "pinnace-0.1.0"


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                out[parts[0].rstrip(":")] = int(parts[1]) * (1024 if len(parts) > 2 else 1)
    return out


def default_address() -> str:
    """The host's primary IPv4 address (the one its default route would use), or 127.0.0.1."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 1))  # UDP connect sends nothing; it only picks a source address
        addr: str = s.getsockname()[0]
        return addr
    return "127.0.0.1"


def os_image() -> str:
    with contextlib.suppress(OSError), open("/etc/os-release") as f:
        for line in f:
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return "Linux"


def machine_id() -> str:
    with contextlib.suppress(OSError), open("/etc/machine-id") as f:
        return f.read().strip()
    return ""


def build_node(
    name: str, address: str, port: int, max_pods: int, runtime_version: str, labels: dict[str, str] | None = None
) -> node_pb2.Node:
    node = node_pb2.Node()
    node.metadata.name = name
    node.metadata.labels.update(
        {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine()),
            "pinnace.io/nfs-client": "true" if nfs_client_available() else "false",
        }
    )
    if labels:
        node.metadata.labels.update(labels)
    fill_status(node.status, name, address, port, max_pods, runtime_version)
    return node


def fill_status(
    status: node_pb2.NodeStatus, name: str, address: str, port: int, max_pods: int, runtime_version: str
) -> None:
    cpus = os.cpu_count() or 1
    mem = meminfo().get("MemTotal", 0)
    del status.addresses[:]
    status.addresses.add(type="InternalIP", address=address)
    status.addresses.add(type="Hostname", address=name)
    for m in (status.capacity, status.allocatable):
        m.clear()
    status.capacity["cpu"].value = str(cpus)
    status.capacity["memory"].value = f"{mem // 1024}Ki"
    status.capacity["pods"].value = str(max_pods)
    status.allocatable["cpu"].value = str(cpus)
    status.allocatable["memory"].value = f"{max(0, mem - (100 << 20)) // 1024}Ki"
    status.allocatable["pods"].value = str(max_pods)
    info = status.node_info
    info.machine_id = machine_id()
    info.kernel_version = platform.release()
    info.os_image = os_image()
    info.operating_system = "linux"
    info.architecture = platform.machine()
    info.container_runtime_version = runtime_version
    info.kubelet_version = VERSION
    status.daemon_endpoints.kubelet_endpoint.port = port
    status.phase = "Running"


def pressure(data_dir: str) -> dict[str, tuple[bool, str]]:
    """Memory, disk and PID pressure: (under pressure, message)."""
    mi = meminfo()
    avail = mi.get("MemAvailable", 1 << 40)
    mem = avail < 100 << 20
    disk = False
    with contextlib.suppress(OSError):
        st = os.statvfs(data_dir)
        disk = st.f_bavail < st.f_blocks * 0.05 or st.f_favail < st.f_files * 0.05
    pids = False
    with contextlib.suppress(OSError, ValueError), open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
        pids = len([d for d in os.listdir("/proc") if d.isdigit()]) > pid_max * 0.9
    return {
        "MemoryPressure": (mem, f"{avail >> 20} MiB available"),
        "DiskPressure": (disk, f"free space on {data_dir}"),
        "PIDPressure": (pids, "process count"),
    }


def set_conditions(status: node_pb2.NodeStatus, data_dir: str, now: float, runtime_error: str = "") -> None:
    """Ready plus the pressure conditions, keeping transition times while statuses hold."""
    old = {c.type: c for c in status.conditions}
    new: list[meta_pb2.Condition] = []
    p = pressure(data_dir)
    ready = (
        ("Ready", "False", "ContainerRuntimeUnhealthy", runtime_error)
        if runtime_error
        else ("Ready", "True", "KubeletReady", "node agent is posting ready status")
    )
    specs = [
        ready,
        *(
            (
                t,
                "True" if bad else "False",
                ("KubeletHas" + ("Insufficient" if bad else "Sufficient") + t.replace("Pressure", ""))
                if t != "DiskPressure"
                else ("KubeletHasDiskPressure" if bad else "KubeletHasNoDiskPressure"),
                msg,
            )
            for t, (bad, msg) in p.items()
        ),
    ]
    for ctype, value, reason, message in specs:
        c = meta_pb2.Condition(type=ctype, status=value, reason=reason, message=message)
        c.last_heartbeat_time.CopyFrom(ts(now))
        prev = old.get(ctype)
        if prev is not None and prev.status == value and prev.HasField("last_transition_time"):
            c.last_transition_time.CopyFrom(prev.last_transition_time)
        else:
            c.last_transition_time.CopyFrom(ts(now))
        new.append(c)
    del status.conditions[:]
    status.conditions.extend(new)


class NodeRegistrar:
    """Registers the Node, renews its Lease every `lease_interval` s and refreshes its status."""

    def __init__(
        self,
        client: Any,
        name: str,
        address: str,
        port: int,
        max_pods: int,
        runtime_version: str,
        data_dir: str,
        labels: dict[str, str] | None = None,
        lease_interval: float = 10.0,
        status_interval: float = 10.0,
        health: Any = None,
    ) -> None:
        self.client = client
        self.name = name
        self.address = address
        self.port = port
        self.max_pods = max_pods
        self.runtime_version = runtime_version
        self.data_dir = data_dir
        self.labels = labels or {}
        self.lease_interval = lease_interval
        self.status_interval = status_interval
        self.health = health  # async () -> "" when the runtime is healthy, else the problem
        self.registered = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def register(self) -> node_pb2.Node:
        c = self.client
        node = build_node(self.name, self.address, self.port, self.max_pods, self.runtime_version, self.labels)
        set_conditions(node.status, self.data_dir, time.time())
        try:
            created: node_pb2.Node = await c.create(node)
            log.info("registered node", node=self.name)
        except errors.AlreadyExists:
            created = await c.get(node_pb2.Node, self.name, namespace=None)

            def merge(n: node_pb2.Node) -> None:
                n.metadata.labels.update(node.metadata.labels)

            created = await c.mutate(node_pb2.Node, self.name, None, merge)
        await self.update_status()
        self.registered.set()
        return created

    async def update_status(self) -> None:
        c = self.client

        problem = ""
        if self.health is not None:
            try:
                problem = await asyncio.wait_for(self.health(), 5)
            except Exception as e:
                problem = f"runtime health check failed: {type(e).__name__}: {e}"

        def fn(n: node_pb2.Node) -> None:
            fill_status(n.status, self.name, self.address, self.port, self.max_pods, self.runtime_version)
            set_conditions(n.status, self.data_dir, time.time(), problem)

        await c.mutate_status(node_pb2.Node, self.name, None, fn)

    async def renew_lease(self) -> None:
        c = self.client
        now = Timestamp()
        now.GetCurrentTime()
        try:
            lease: cluster_pb2.Lease = await c.get(cluster_pb2.Lease, self.name, namespace=LEASE_NAMESPACE)
        except errors.NotFound:
            lease = cluster_pb2.Lease()
            lease.metadata.name = self.name
            lease.metadata.namespace = LEASE_NAMESPACE
            lease.spec.holder_identity = self.name
            lease.spec.lease_duration_seconds = LEASE_DURATION
            lease.spec.acquire_time.CopyFrom(now)
            lease.spec.renew_time.CopyFrom(now)
            try:
                await c.create(lease)
                return
            except errors.AlreadyExists:
                lease = await c.get(cluster_pb2.Lease, self.name, namespace=LEASE_NAMESPACE)
        lease.spec.holder_identity = self.name
        lease.spec.lease_duration_seconds = LEASE_DURATION
        lease.spec.renew_time.CopyFrom(now)
        await c.update(lease)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="node-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _loop(self) -> None:
        last_status = 0.0
        while True:
            try:
                if not self.registered.is_set():
                    await self.register()
                    last_status = time.monotonic()
                await self.renew_lease()
                if time.monotonic() - last_status >= self.status_interval:
                    await self.update_status()
                    last_status = time.monotonic()
            except asyncio.CancelledError:
                raise
            except errors.NotFound as e:
                log.warning("node or lease vanished; registering again", error=str(e))
                self.registered.clear()
                await asyncio.sleep(1.0)
                continue
            except Exception as e:
                log.warning("node heartbeat failed", error=f"{type(e).__name__}: {e}")
                await asyncio.sleep(1.0)
                continue
            await asyncio.sleep(self.lease_interval)
