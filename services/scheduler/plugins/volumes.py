"""VolumePlacement: nodes must be able to serve the pod's volumes.

- an nfs volume (inline, or through a claim bound to an NFS PersistentVolume) needs a node labelled
  pinnace.io/nfs-client=true;
- a claim bound to a volume with node affinity (local/hostPath PVs) pins the pod to matching nodes;
- a claim that is missing or not bound makes the pod unschedulable everywhere, unless its
  StorageClass binds WaitForFirstConsumer (the binder waits for the pod to be placed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pinnace.api import pod_pb2, storage_pb2
from services.scheduler.cache import BoolArray
from services.scheduler.framework import Cycle, FilterPlugin
from services.scheduler.plugins.nodematch import node_selector_mask, selector_mask

NFS_LABEL = "pinnace.io/nfs-client"


@dataclass
class VolumeNeeds:
    nfs: bool = False
    pinned: list[tuple[str, pod_pb2.NodeSelector]] = field(default_factory=list)  # (pv name, affinity)
    problem: str | None = None


def volume_needs(cycle: Cycle) -> VolumeNeeds:
    needs = VolumeNeeds()
    ns = cycle.pod.metadata.namespace
    for v in cycle.pod.spec.volumes:
        if v.HasField("nfs"):
            needs.nfs = True
        if not v.HasField("persistent_volume_claim"):
            continue
        claim = v.persistent_volume_claim.claim_name
        pvc = cycle.volumes.get_pvc(ns, claim)
        if pvc is None:
            needs.problem = needs.problem or f'persistentvolumeclaim "{claim}" not found'
            continue
        pv = _bound_volume(cycle, pvc)
        if pv is None:
            if not _waits_for_consumer(cycle, pvc):
                needs.problem = needs.problem or f'persistentvolumeclaim "{claim}" not bound'
            continue
        if pv.spec.HasField("nfs"):
            needs.nfs = True
        if pv.spec.node_affinity.HasField("required"):
            needs.pinned.append((pv.metadata.name, pv.spec.node_affinity.required))
    return needs


def _bound_volume(cycle: Cycle, pvc: storage_pb2.PersistentVolumeClaim) -> storage_pb2.PersistentVolume | None:
    if not pvc.spec.volume_name:
        return None
    if pvc.status.phase and pvc.status.phase != "Bound":
        return None
    return cycle.volumes.get_pv(pvc.spec.volume_name)


def _waits_for_consumer(cycle: Cycle, pvc: storage_pb2.PersistentVolumeClaim) -> bool:
    if not pvc.spec.HasField("storage_class_name") or not pvc.spec.storage_class_name:
        return False
    sc = cycle.volumes.get_storage_class(pvc.spec.storage_class_name)
    return sc is not None and sc.volume_binding_mode == "WaitForFirstConsumer"


class VolumePlacement(FilterPlugin):
    name = "VolumePlacement"

    def _needs(self, cycle: Cycle) -> VolumeNeeds:
        result: VolumeNeeds = cycle.memo("volumes", lambda: volume_needs(cycle))
        return result

    def prefilter(self, cycle: Cycle) -> str | None:
        if not cycle.pod.spec.volumes:
            return None
        return self._needs(cycle).problem

    def _nfs_mask(self, cycle: Cycle) -> BoolArray:
        return selector_mask(cycle.cache, cycle.n, {NFS_LABEL: "true"})

    def filter(self, cycle: Cycle) -> BoolArray | None:
        if not cycle.pod.spec.volumes:
            return None
        needs = self._needs(cycle)
        if not needs.nfs and not needs.pinned:
            return None
        mask = np.ones(cycle.n, dtype=bool)
        if needs.nfs:
            mask &= self._nfs_mask(cycle)
        for _pv, sel in needs.pinned:
            mask &= node_selector_mask(cycle.cache, cycle.n, sel)
        return mask

    def reasons(self, cycle: Cycle, i: int) -> list[str]:
        needs = self._needs(cycle)
        out = []
        if needs.nfs and not self._nfs_mask(cycle)[i]:
            out.append(f"node(s) lacked an NFS client (label {NFS_LABEL}=true)")
        if any(not node_selector_mask(cycle.cache, cycle.n, sel)[i] for _pv, sel in needs.pinned):
            out.append("node(s) had volume node affinity conflict")
        return out
