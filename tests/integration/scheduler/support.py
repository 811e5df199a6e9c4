"""Shared scaffolding for the scheduler's and controllers' integration tests: a real store (from
tests/support/store.py), object builders, waiting, and a fake "node agent" that marks bound pods
Running and Ready (test scaffolding standing in for real node agents)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from pinnace.api import meta_pb2, node_pb2, pod_pb2
from pinnace.client import AsyncClient, Informer, errors
from tests.support.waiting import eventually_async

wait_for = eventually_async  # the name these tests use


@contextlib.asynccontextmanager
async def running_store(tmp_path: Path) -> AsyncIterator[list[str]]:
    """Endpoints of a fresh real store (one replica, its own process) for one test."""
    from tests.support.store import start_store

    cluster = start_store(tmp_path)
    try:
        yield list(cluster.endpoints)
    finally:
        cluster.stop()


def make_node(name: str, cpu: str = "4", mem: str = "8Gi", labels: dict[str, str] | None = None) -> node_pb2.Node:
    n = node_pb2.Node()
    n.metadata.name = name
    n.metadata.labels.update({"kubernetes.io/hostname": name, **(labels or {})})
    for key, q in (("cpu", cpu), ("memory", mem), ("pods", "110")):
        n.status.capacity[key].CopyFrom(meta_pb2.Quantity(value=q))
        n.status.allocatable[key].CopyFrom(meta_pb2.Quantity(value=q))
    n.status.conditions.add(type="Ready", status="True")
    return n


def make_pod(name: str, cpu: str = "100m", labels: dict[str, str] | None = None, ns: str = "default") -> pod_pb2.Pod:
    p = pod_pb2.Pod()
    p.metadata.name = name
    p.metadata.namespace = ns
    p.metadata.labels.update(labels or {})
    c = p.spec.containers.add(name="c", image="busybox")
    c.resources.requests["cpu"].CopyFrom(meta_pb2.Quantity(value=cpu))
    return p


async def create_node(client: AsyncClient, node: node_pb2.Node) -> node_pb2.Node:
    created = await client.create(node)

    def set_status(current: node_pb2.Node) -> node_pb2.Node:
        current.status.CopyFrom(node.status)
        return current

    # read-modify-write: a controller (node IPAM) may update the new node before we do
    return await client.mutate_status(node_pb2.Node, created.metadata.name, None, set_status)


def mark_running(pod: pod_pb2.Pod, ip: str) -> None:
    pod.status.phase = "Running"
    pod.status.pod_ip = ip
    pod.status.host_ip = "192.0.2.1"
    del pod.status.conditions[:]
    pod.status.conditions.add(type="PodScheduled", status="True")
    pod.status.conditions.add(type="Ready", status="True")
    pod.status.conditions.add(type="ContainersReady", status="True")
    pod.status.start_time.GetCurrentTime()


class FakeNodeAgent:
    """Test scaffolding standing in for node agents: bound pods become Running+Ready (after `delay`);
    terminating pods are removed at once (as an agent does after stopping containers)."""

    def __init__(self, client: AsyncClient, delay: float = 0.0, ready: bool = True) -> None:
        self.client = client
        self.delay = delay
        self.ready = ready
        self.informer: Informer[pod_pb2.Pod] = Informer(client, pod_pb2.Pod, name="fake-agent")
        self.informer.add_handler(on_add=self._seen, on_update=lambda _o, n: self._seen(n))
        self._tasks: set[asyncio.Task[None]] = set()
        self._ip = 0
        self.paused = False

    def _seen(self, pod: pod_pb2.Pod) -> None:
        if self.paused or not pod.spec.node_name:
            return
        if pod.metadata.HasField("deletion_timestamp") or pod.status.phase != "Running":
            t = asyncio.create_task(self._handle(pod))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _handle(self, pod: pod_pb2.Pod) -> None:
        m = pod.metadata
        try:
            if m.HasField("deletion_timestamp"):
                await self.client.delete(pod_pb2.Pod, m.name, m.namespace, grace_period_seconds=0)
                return
            if self.delay:
                await asyncio.sleep(self.delay)
            self._ip += 1
            ip = f"10.244.{self._ip // 250}.{self._ip % 250 + 2}"

            def fn(p: pod_pb2.Pod) -> None:
                mark_running(p, ip)
                if not self.ready:
                    for c in p.status.conditions:
                        if c.type == "Ready":
                            c.status = "False"

            await self.client.mutate_status(pod_pb2.Pod, m.name, m.namespace, fn)
        except errors.PinnaceError:
            pass

    async def start(self) -> None:
        await self.informer.start()
        await self.informer.wait_synced()

    async def stop(self) -> None:
        await self.informer.stop()
        for t in list(self._tasks):
            t.cancel()
