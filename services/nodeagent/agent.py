"""The node agent: registers the node, watches the pods bound to it, runs one worker per pod, collects
orphans, and serves the NodeAgent (logs/exec) API."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from dataclasses import dataclass
from typing import Any

import grpc

from pinnace.api import nodelocal_pb2_grpc, pod_pb2
from pinnace.client import AsyncClient, Informer
from pinnace.client.events import EventRecorder
from pinnace.common.logging import get_logger
from pinnace.common.server import build_server, health_serving
from pinnace.common.tls import TLSConfig
from services.nodeagent import metrics, podstate
from services.nodeagent.api import ContainerRef, LookupError_, NodeAgentService
from services.nodeagent.context import AgentContext
from services.nodeagent.node import NodeRegistrar, default_address
from services.nodeagent.nodelocal import NetagentClient, VolagentClient
from services.nodeagent.podworker import PodWorker, release_pod
from services.nodeagent.runtimes.base import Runtime

log = get_logger("nodeagent")
EVENT_COMPONENT = "nodeagent"  # source.component of the Events about pods (the kubelet's "kubelet")


@dataclass
class AgentConfig:
    node_name: str
    store: list[str]
    runtime: str = "host"
    run_dir: str = ""
    data_dir: str = ""
    address: str = ""
    port: int = 10250
    listen_host: str = ""
    max_pods: int = 110
    netagent_socket: str = ""
    volagent_socket: str = ""
    cgroup_root: str = ""
    tls: TLSConfig | None = None
    metrics_port: int = 0
    lease_interval: float = 10.0
    status_interval: float = 10.0
    backoff_base: float = 10.0
    log_max_bytes: int = 10 << 20
    log_max_files: int = 3
    labels: dict[str, str] | None = None

    def __post_init__(self) -> None:
        self.run_dir = self.run_dir or f"/run/pinnace/{self.node_name}"
        self.data_dir = self.data_dir or f"/var/lib/pinnace/{self.node_name}"
        self.netagent_socket = self.netagent_socket or os.path.join(self.run_dir, "netagent.sock")
        self.volagent_socket = self.volagent_socket or os.path.join(self.run_dir, "volagent.sock")
        self.address = self.address or default_address()


def make_runtime(cfg: AgentConfig) -> Runtime:
    from services.nodeagent.cgroups import Cgroups

    cgroups = Cgroups(cfg.node_name, cfg.cgroup_root)
    if cfg.runtime == "host":
        from services.nodeagent.runtimes.host import HostRuntime

        return HostRuntime(cfg.data_dir, cgroups, cfg.log_max_bytes, cfg.log_max_files)
    if cfg.runtime == "docker":
        from services.nodeagent.runtimes.docker import DockerRuntime

        return DockerRuntime(cfg.node_name, cfg.data_dir)
    raise ValueError(f"unknown runtime {cfg.runtime!r} (host or docker)")


def _never() -> bool:
    return False


class NodeAgent:
    def __init__(self, cfg: AgentConfig, runtime: Runtime | None = None) -> None:
        self.cfg = cfg
        self.client = AsyncClient(cfg.store, tls=cfg.tls)
        self.runtime = runtime or make_runtime(cfg)
        self.events = EventRecorder(self.client, EVENT_COMPONENT, host=cfg.node_name)
        self.ctx = AgentContext(
            client=self.client,
            runtime=self.runtime,
            netagent=NetagentClient(cfg.netagent_socket),
            volagent=VolagentClient(cfg.volagent_socket),
            node_name=cfg.node_name,
            host_ip=cfg.address,
            data_dir=cfg.data_dir,
            run_dir=cfg.run_dir,
            backoff_base=cfg.backoff_base,
            events=self.events,
        )
        self.workers: dict[str, PodWorker] = {}  # by pod uid
        self.by_name: dict[str, str] = {}  # "ns/name" -> uid
        self.informer: Informer[pod_pb2.Pod] = Informer(
            self.client, pod_pb2.Pod, field_selector=f"spec.nodeName={cfg.node_name}", name="node-pods"
        )
        self.registrar: NodeRegistrar | None = None
        self.server: grpc.aio.Server | None = None
        self.port = cfg.port
        self._stopping = False
        self._orphans_task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        os.makedirs(os.path.join(self.cfg.data_dir, "pods"), exist_ok=True)
        os.makedirs(self.cfg.run_dir, exist_ok=True)
        self.events.start()
        delay = 0.5
        while True:
            try:
                await self.runtime.start()
                break
            except Exception as e:  # e.g. dockerd not up yet: wait for it, like the kubelet
                log.warning("container runtime not available; retrying", runtime=self.runtime.name, error=str(e))
                await asyncio.sleep(delay)
                delay = min(10.0, delay * 2)
        self.server = build_server(
            "nodeagent",
            None,
            tls=self.cfg.tls,
            metrics_port=self.cfg.metrics_port,
            service_names=["pinnace.v1.NodeAgent"],
        )
        nodelocal_pb2_grpc.add_NodeAgentServicer_to_server(NodeAgentService(self.runtime, self.lookup), self.server)
        from pinnace.common.server import add_listener

        host = self.cfg.listen_host or "0.0.0.0"
        self.port = add_listener(self.server, f"{host}:{self.cfg.port}", self.cfg.tls)
        await self.server.start()
        await health_serving(self.server)
        self.registrar = NodeRegistrar(
            self.client,
            self.cfg.node_name,
            self.cfg.address,
            self.port,
            self.cfg.max_pods,
            self.runtime.version(),
            self.cfg.data_dir,
            self.cfg.labels,
            self.cfg.lease_interval,
            self.cfg.status_interval,
            health=self.runtime.health,
        )
        self.registrar.start()
        self.informer.add_handler(on_add=self._on_add, on_update=self._on_update, on_delete=self._on_delete)
        await self.informer.start()
        self._orphans_task = asyncio.create_task(self._collect_orphans_when_synced(), name="orphans")
        log.info("node agent started", node=self.cfg.node_name, runtime=self.runtime.name, port=self.port)

    async def stop(self) -> None:
        """Stop watching and serving; pods keep running (the next agent adopts them)."""
        self._stopping = True
        await self.informer.stop()
        if self.registrar is not None:
            await self.registrar.stop()
        await asyncio.gather(*(w.stop() for w in self.workers.values()), return_exceptions=True)
        if self.server is not None:
            await self.server.stop(0.5)
        with contextlib.suppress(Exception):
            await self.ctx.netagent.close()
            await self.ctx.volagent.close()
        await self.events.stop()
        await self.runtime.close()
        await self.client.close()

    # -- informer handlers -------------------------------------------------------------------
    def _mine(self, pod: pod_pb2.Pod) -> bool:
        return pod.spec.node_name == self.cfg.node_name

    def _on_add(self, pod: pod_pb2.Pod) -> None:
        if not self._mine(pod) or self._stopping:
            return
        uid = pod.metadata.uid
        w = self.workers.get(uid)
        if w is not None:
            w.update(pod)
            return
        w = PodWorker(self.ctx, pod)
        if self._over_capacity(pod):
            w.reject("OutOfpods", f"Node didn't have enough resource: pods, limit {self.cfg.max_pods}")
        self.workers[uid] = w
        self.by_name[w.key] = uid
        metrics.PODS.set(len(self.workers))
        w.start()
        assert w.task is not None
        w.task.add_done_callback(functools.partial(self._worker_done, uid))

    def _over_capacity(self, pod: pod_pb2.Pod) -> bool:
        """Admission like the kubelet's: a new pod beyond --max-pods active pods is refused."""
        if pod.status.phase not in ("", "Pending") or os.path.exists(
            podstate.state_path(self.ctx.pod_dir(pod.metadata.uid))
        ):
            return False
        active = sum(1 for w in self.workers.values() if not w.finished())
        return active >= self.cfg.max_pods

    def _worker_done(self, uid: str, _task: object = None) -> None:
        w = self.workers.get(uid)
        if w is not None and w.done.is_set() and not self._stopping:
            self.workers.pop(uid, None)
            metrics.PODS.set(len(self.workers))
            if self.by_name.get(w.key) == uid:
                self.by_name.pop(w.key, None)

    def _on_update(self, old: pod_pb2.Pod, new: pod_pb2.Pod) -> None:
        if old.metadata.uid != new.metadata.uid:
            self._on_delete(old)
        self._on_add(new)

    def _on_delete(self, pod: pod_pb2.Pod) -> None:
        w = self.workers.get(pod.metadata.uid)
        if w is not None:
            w.deleted()

    # -- orphans -----------------------------------------------------------------------------
    async def _collect_orphans_when_synced(self) -> None:
        await self.informer.wait_synced()
        try:
            await self.collect_orphans()
        except Exception as e:
            log.warning("orphan collection failed", error=str(e))

    async def collect_orphans(self) -> list[str]:
        """Remove what belongs to no pod bound to this node (pods deleted while the agent was down)."""
        known = {p.metadata.uid for p in self.informer.list() if self._mine(p)}
        removed = []
        for uid in await self.runtime.list_sandbox_uids():
            if uid in known or uid in self.workers:
                continue
            st = podstate.load(self.ctx.pod_dir(uid))
            log.info("removing orphaned pod", uid=uid, pod=f"{st.namespace}/{st.name}" if st else "?")
            await release_pod(self.ctx, uid, st.namespace if st else "", st.name if st else "", st, None)
            removed.append(uid)
        return removed

    # -- API lookup --------------------------------------------------------------------------
    def lookup(self, namespace: str, pod: str, container: str, previous: bool) -> ContainerRef:
        uid = self.by_name.get(f"{namespace}/{pod}")
        w = self.workers.get(uid or "")
        if w is None:
            raise LookupError_(f"pod {namespace}/{pod} is not on node {self.cfg.node_name}")
        names = [c.name for c in w.pod.spec.containers]
        if not container:
            if len(names) != 1:
                raise LookupError_(f"pod {namespace}/{pod} has several containers; name one of {names}")
            container = names[0]
        cs = w.st.containers.get(container)
        if cs is None or cs.record is None:
            raise LookupError_(f"container {container} of pod {namespace}/{pod} has not started")
        if previous:
            # like the kubelet: the instance before the current one (running or exited)
            if cs.last_record is None:
                raise LookupError_(f"previous terminated container {container!r} in pod {namespace}/{pod} not found")
            return ContainerRef(sandbox=w.st.sandbox, record=cs.last_record, running=_never)
        rec = cs.record

        def running(cs: Any = cs, rec: Any = rec) -> bool:
            return bool(cs.record is rec and cs.exit is None and not w.done.is_set())

        return ContainerRef(sandbox=w.st.sandbox, record=rec, running=running)
