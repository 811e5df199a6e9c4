"""The node lifecycle controller: heartbeats, readiness taints and evictions.

- A node whose Lease (kube-node-lease/<node>) or Ready heartbeat has not changed for the grace period
  (observed on this process's monotonic clock, never comparing clocks across hosts) gets Ready=Unknown
  and the taints node.kubernetes.io/unreachable NoSchedule + NoExecute; a node reporting Ready=False
  gets node.kubernetes.io/not-ready NoSchedule + NoExecute. Both go when the node is healthy again.
- Pods on a node with NoExecute taints are deleted once their toleration runs out: tolerationSeconds of
  a matching toleration, the eviction timeout for not-ready/unreachable taints the pod does not
  tolerate (Kubernetes adds these tolerations by default with 300 s), at once for other taints.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api import cluster_pb2, node_pb2, pod_pb2
from pinnace.client import errors
from pinnace.common.logging import get_logger
from pinnace.common.tolerations import tolerates
from services.controllers.base import Controller

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
LEASE_NS = "kube-node-lease"
OUR_TAINTS = (UNREACHABLE, NOT_READY)
log = get_logger("nodelifecycle")


def _now() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


def _ready(node: node_pb2.Node) -> Any:
    return next((c for c in node.status.conditions if c.type == "Ready"), None)


def eviction_delay(pod: pod_pb2.Pod, taint: node_pb2.Taint, default: float) -> float | None:
    """Seconds after the taint was added when the pod must go; None = tolerated for good."""
    matching = [t for t in pod.spec.tolerations if tolerates(t, taint)]
    if not matching:
        return default if taint.key in OUR_TAINTS else 0.0
    if any(not t.HasField("toleration_seconds") for t in matching):
        return None
    return float(max(0, min(t.toleration_seconds for t in matching)))


class NodeLifecycleController(Controller):
    name = "nodelifecycle"
    workers = 2

    def setup(self) -> None:
        self.nodes = self.informers.get(node_pb2.Node)
        self.leases = self.informers.get(cluster_pb2.Lease, LEASE_NS)
        self.pods = self.informers.get(pod_pb2.Pod)
        self.pods.add_index("nodeName", lambda p: [p.spec.node_name] if p.spec.node_name else [])
        self._beats: dict[str, tuple[str, float]] = {}
        self._status_forbidden_logged = False  # node -> (heartbeat signature, when it changed)
        self.nodes.add_handler(on_add=self._node, on_update=lambda _o, n: self._node(n), on_delete=self._node_gone)
        self.leases.add_handler(on_add=self._lease, on_update=lambda _o, n: self._lease(n))
        self.pods.add_handler(on_add=self._pod, on_update=lambda _o, n: self._pod(n))

    def keys(self) -> Iterable[Any]:
        return self.nodes.keys()

    def _node(self, node: node_pb2.Node) -> None:
        self._observe(node.metadata.name)
        self.enqueue(node.metadata.name)

    def _node_gone(self, node: node_pb2.Node) -> None:
        self._beats.pop(node.metadata.name, None)

    def _lease(self, lease: cluster_pb2.Lease) -> None:
        self._observe(lease.metadata.name)
        self.enqueue(lease.metadata.name)

    def _pod(self, pod: pod_pb2.Pod) -> None:
        if pod.spec.node_name:
            node = self.nodes.get(pod.spec.node_name)
            if node is not None and any(t.effect == "NoExecute" for t in node.spec.taints):
                self.enqueue(pod.spec.node_name)

    def _signature(self, name: str) -> str:
        lease = self.leases.get(f"{LEASE_NS}/{name}")
        node = self.nodes.get(name)
        parts = []
        if lease is not None:
            parts.append(lease.spec.renew_time.SerializeToString(deterministic=True).hex())
            parts.append(lease.spec.holder_identity)
        if node is not None:
            r = _ready(node)  # our own status writes never touch last_heartbeat_time
            if r is not None and r.HasField("last_heartbeat_time"):
                parts.append(r.last_heartbeat_time.SerializeToString(deterministic=True).hex())
        return "|".join(parts)

    def _observe(self, name: str) -> None:
        sig = self._signature(name)
        prior = self._beats.get(name)
        if prior is None or prior[0] != sig:
            self._beats[name] = (sig, time.monotonic())

    async def background(self) -> None:
        # a node's health depends on time passing: look at every node each monitor period
        start = time.monotonic()
        for name in list(self._beats):
            sig, _ = self._beats[name]
            self._beats[name] = (sig, max(self._beats[name][1], start))  # a new leader gives a full grace period
        while True:
            await asyncio.sleep(self.options.monitor_period)
            for name in self.nodes.keys():
                self.enqueue(name)

    async def reconcile(self, name: str) -> float | None:
        node = self.nodes.get(name)
        if node is None:
            return None
        self._observe(name)
        _, since = self._beats[name]
        stale = time.monotonic() - since > self.options.node_grace_period
        ready = _ready(node)
        if stale:
            state = "Unknown"
        elif ready is None:
            state = ""  # within the grace period and no status yet: no opinion
        elif ready.status == "Unknown" and ready.reason == "NodeStatusUnknown":
            state = "True"  # our own mark from an outage; the heartbeat is back
        else:
            state = ready.status
        if await self._sync_status(node, state):
            return None
        if await self._sync_taints(node, state):
            return None
        return await self._evict(node)

    async def _sync_status(self, node: node_pb2.Node, state: str) -> bool:
        try:
            return await self._write_status(node, state)
        except errors.Forbidden as exc:
            # the store may reserve node status for node agents; the taints still do the work
            if not self._status_forbidden_logged:
                self._status_forbidden_logged = True
                log.warning("cannot mark node status; relying on taints", node=node.metadata.name, error=str(exc))
            return False

    async def _write_status(self, node: node_pb2.Node, state: str) -> bool:
        ready = _ready(node)
        if state == "Unknown" and (ready is None or ready.status != "Unknown"):
            new = node_pb2.Node()
            new.CopyFrom(node)
            for c in new.status.conditions:
                if c.status != "Unknown":
                    c.status = "Unknown"
                    c.reason = "NodeStatusUnknown"
                    c.message = "Kubelet stopped posting node status."
                    c.last_transition_time.CopyFrom(_now())
            if _ready(new) is None:
                c = new.status.conditions.add(type="Ready", status="Unknown", reason="NodeStatusUnknown")
                c.message = "Kubelet never posted node status."
                c.last_transition_time.CopyFrom(_now())
            await self.client.update_status(new)
            self.recorder.emit(node, "Normal", "NodeNotReady", f"Node {node.metadata.name} status is now: NodeNotReady")
            return True
        if state == "True" and ready is not None and ready.status == "Unknown" and ready.reason == "NodeStatusUnknown":
            new = node_pb2.Node()
            new.CopyFrom(node)
            for c in new.status.conditions:
                if c.reason == "NodeStatusUnknown":
                    c.status = "True" if c.type == "Ready" else "False"
                    c.reason = "NodeLeaseRenewed" if c.type == "Ready" else ""
                    c.message = "node heartbeats resumed" if c.type == "Ready" else ""
                    c.last_transition_time.CopyFrom(_now())
            await self.client.update_status(new)
            self.recorder.emit(node, "Normal", "NodeReady", f"Node {node.metadata.name} status is now: NodeReady")
            return True
        return False

    async def _sync_taints(self, node: node_pb2.Node, state: str) -> bool:
        want_key = {"Unknown": UNREACHABLE, "False": NOT_READY}.get(state)
        want = {(want_key, e) for e in ("NoSchedule", "NoExecute")} if want_key else set()
        have = {(t.key, t.effect) for t in node.spec.taints if t.key in OUR_TAINTS}
        if want == have:
            return False
        new = node_pb2.Node()
        new.CopyFrom(node)
        keep = [t for t in new.spec.taints if t.key not in OUR_TAINTS or (t.key, t.effect) in want]
        for key, effect in sorted(want - have):
            t = node_pb2.Taint(key=key, effect=effect)
            t.time_added.CopyFrom(_now())
            keep.append(t)
        del new.spec.taints[:]
        new.spec.taints.extend(keep)
        await self.client.update(new)
        return True

    async def _evict(self, node: node_pb2.Node) -> float | None:
        taints = [t for t in node.spec.taints if t.effect == "NoExecute"]
        if not taints:
            return None
        now = time.time()
        soonest: float | None = None
        for pod in self.pods.by_index("nodeName", node.metadata.name):
            if pod.metadata.HasField("deletion_timestamp") or pod.status.phase in ("Succeeded", "Failed"):
                continue
            due: float | None = None
            for t in taints:
                delay = eviction_delay(pod, t, self.options.eviction_timeout)
                if delay is None:
                    continue
                added = t.time_added.seconds + t.time_added.nanos / 1e9 if t.HasField("time_added") else now
                at = added + delay
                due = at if due is None else min(due, at)
            if due is None:
                continue
            if due <= now:
                try:
                    m = pod.metadata
                    await self.client.delete(pod_pb2.Pod, m.name, m.namespace, uid=m.uid)
                    self.recorder.emit(
                        pod,
                        "Normal",
                        "TaintManagerEviction",
                        f"Marking for deletion Pod {pod.metadata.namespace}/{pod.metadata.name}",
                    )
                except errors.NotFound:
                    pass
            else:
                soonest = due - now if soonest is None else min(soonest, due - now)
        return max(0.2, soonest) if soonest is not None else None
