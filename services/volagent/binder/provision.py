"""The built-in dynamic provisioner pinnace.io/hostpath: a directory per claim under a base dir."""

from __future__ import annotations

import os

from pinnace.api import meta_pb2, pod_pb2, storage_pb2
from services.volagent.binder.matching import BOUND_BY_CONTROLLER, HOSTNAME_LABEL, PROVISIONED_BY

PROVISIONER = "pinnace.io/hostpath"


def volume_name(claim: storage_pb2.PersistentVolumeClaim) -> str:
    return f"pvc-{claim.metadata.uid}"


def build_volume(
    claim: storage_pb2.PersistentVolumeClaim, sc: storage_pb2.StorageClass, base_dir: str, node: str | None
) -> storage_pb2.PersistentVolume:
    """The PV for claim, pre-bound to it (claimRef with uid), pinned to node for WaitForFirstConsumer."""
    name = volume_name(claim)
    pv = storage_pb2.PersistentVolume(
        metadata=meta_pb2.ObjectMeta(name=name, annotations={PROVISIONED_BY: PROVISIONER, BOUND_BY_CONTROLLER: "yes"})
    )
    s = pv.spec
    req = claim.spec.resources.requests.get("storage")
    s.capacity["storage"].value = req.value if req is not None and req.value else "1Gi"
    s.access_modes.extend(claim.spec.access_modes or ["ReadWriteOnce"])
    s.persistent_volume_reclaim_policy = sc.reclaim_policy or "Delete"
    s.storage_class_name = sc.metadata.name
    s.mount_options.extend(sc.mount_options)
    s.volume_mode = claim.spec.volume_mode or "Filesystem"
    s.host_path.path = os.path.join(base_dir, name)
    s.host_path.type = "DirectoryOrCreate"
    ref = s.claim_ref
    ref.kind, ref.api_version = "PersistentVolumeClaim", "v1"
    ref.namespace, ref.name, ref.uid = claim.metadata.namespace, claim.metadata.name, claim.metadata.uid
    if node:
        term = pod_pb2.NodeSelectorTerm(
            match_expressions=[pod_pb2.NodeSelectorRequirement(key=HOSTNAME_LABEL, operator="In", values=[node])]
        )
        s.node_affinity.required.node_selector_terms.append(term)
    return pv


def make_directory(pv: storage_pb2.PersistentVolume) -> None:
    """Create the backing directory (world-writable, like Kubernetes' hostpath provisioner)."""
    path = pv.spec.host_path.path
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o777)
