"""An in-memory scheduler (no store): nodes, pods and volumes in, decisions out. Used by tests and the
decision benchmark; the service uses the same cache and framework fed by informers."""

from __future__ import annotations

from collections.abc import Iterable

from pinnace.api import node_pb2, pod_pb2, storage_pb2
from services.scheduler.cache import NodeCache, pod_key
from services.scheduler.framework import Decision, Framework, NodeReport
from services.scheduler.plugins import default_plugins


class DictVolumes:
    """A VolumeLister over plain dicts."""

    def __init__(self) -> None:
        self.pvcs: dict[tuple[str, str], storage_pb2.PersistentVolumeClaim] = {}
        self.pvs: dict[str, storage_pb2.PersistentVolume] = {}
        self.classes: dict[str, storage_pb2.StorageClass] = {}

    def get_pvc(self, namespace: str, name: str) -> storage_pb2.PersistentVolumeClaim | None:
        return self.pvcs.get((namespace, name))

    def get_pv(self, name: str) -> storage_pb2.PersistentVolume | None:
        return self.pvs.get(name)

    def get_storage_class(self, name: str) -> storage_pb2.StorageClass | None:
        return self.classes.get(name)


class Harness:
    """Schedules pods against in-memory nodes; successful decisions are counted on their node."""

    def __init__(self, nodes: Iterable[node_pb2.Node] = (), pods: Iterable[pod_pb2.Pod] = (), seed: int = 0) -> None:
        self.cache = NodeCache()
        self.volumes = DictVolumes()
        filters, scores = default_plugins()
        self.framework = Framework(self.cache, filters, scores, self.volumes, seed=seed)
        for n in nodes:
            self.cache.upsert_node(n)
        for p in pods:
            self.cache.observe_pod(p)

    def add_pvc(self, pvc: storage_pb2.PersistentVolumeClaim) -> None:
        self.volumes.pvcs[(pvc.metadata.namespace or "default", pvc.metadata.name)] = pvc

    def add_pv(self, pv: storage_pb2.PersistentVolume) -> None:
        self.volumes.pvs[pv.metadata.name] = pv

    def add_storage_class(self, sc: storage_pb2.StorageClass) -> None:
        self.volumes.classes[sc.metadata.name] = sc

    def schedule(self, pod: pod_pb2.Pod) -> Decision:
        if not pod.metadata.namespace:
            pod.metadata.namespace = "default"
        d = self.framework.schedule(pod)
        if d.node is not None:
            self.cache.assume(pod, d.node)
            self.cache.assumed.discard(pod_key(pod))
        return d

    def explain(self, pod: pod_pb2.Pod) -> tuple[str | None, list[NodeReport]]:
        if not pod.metadata.namespace:
            pod.metadata.namespace = "default"
        return self.framework.explain(pod)
