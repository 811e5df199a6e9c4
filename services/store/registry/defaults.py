"""Per-kind defaulting, as Kubernetes' API server does it (only fields the user left empty)."""

from __future__ import annotations

from pinnace.api import apps_pb2, pod_pb2, service_pb2, storage_pb2
from pinnace.api.object_pb2 import Object

DEFAULT_GRACE_SECONDS = 30


def default_pod_spec(spec: pod_pb2.PodSpec) -> None:
    if not spec.restart_policy:
        spec.restart_policy = "Always"
    if not spec.dns_policy:
        spec.dns_policy = "ClusterFirst"
    if not spec.HasField("termination_grace_period_seconds"):
        spec.termination_grace_period_seconds = DEFAULT_GRACE_SECONDS
    if not spec.scheduler_name:
        spec.scheduler_name = "default-scheduler"
    for c in [*spec.init_containers, *spec.containers]:
        if not c.image_pull_policy:
            tag = c.image.rsplit("/", 1)[-1]
            c.image_pull_policy = "Always" if (":" not in tag or tag.endswith(":latest")) else "IfNotPresent"
        if not c.termination_message_path:
            c.termination_message_path = "/dev/termination-log"
        for p in c.ports:
            if not p.protocol:
                p.protocol = "TCP"


def default_service(svc: service_pb2.Service) -> None:
    s = svc.spec
    if not s.type:
        s.type = "ClusterIP"
    if not s.session_affinity:
        s.session_affinity = "None"
    if s.type != "ExternalName" and not s.internal_traffic_policy:
        s.internal_traffic_policy = "Cluster"
    if s.type in ("NodePort", "LoadBalancer") and not s.external_traffic_policy:
        s.external_traffic_policy = "Cluster"
    for p in s.ports:
        if not p.protocol:
            p.protocol = "TCP"
        if not p.HasField("target_port") or (
            p.target_port.WhichOneof("value") == "int_val" and p.target_port.int_val == 0
        ):
            p.target_port.int_val = p.port


def default_deployment(d: apps_pb2.Deployment) -> None:
    s = d.spec
    if not s.HasField("replicas"):
        s.replicas = 1
    if not s.strategy.type:
        s.strategy.type = "RollingUpdate"
    if s.strategy.type == "RollingUpdate":
        ru = s.strategy.rolling_update
        if not ru.HasField("max_unavailable"):
            ru.max_unavailable.str_val = "25%"
        if not ru.HasField("max_surge"):
            ru.max_surge.str_val = "25%"
    if not s.HasField("revision_history_limit"):
        s.revision_history_limit = 10
    if not s.HasField("progress_deadline_seconds"):
        s.progress_deadline_seconds = 600
    default_pod_spec(s.template.spec)


def default_replica_set(rs: apps_pb2.ReplicaSet) -> None:
    if not rs.spec.HasField("replicas"):
        rs.spec.replicas = 1
    default_pod_spec(rs.spec.template.spec)


def default_pv(pv: storage_pb2.PersistentVolume) -> None:
    if not pv.spec.persistent_volume_reclaim_policy:
        pv.spec.persistent_volume_reclaim_policy = "Retain"
    if not pv.spec.volume_mode:
        pv.spec.volume_mode = "Filesystem"


def default_pvc(pvc: storage_pb2.PersistentVolumeClaim) -> None:
    if not pvc.spec.volume_mode:
        pvc.spec.volume_mode = "Filesystem"


def apply_defaults(obj: Object) -> None:
    """Fill defaults of the spec (metadata and status defaults are set by the create strategy)."""
    key = obj.WhichOneof("kind")
    if key == "pod":
        default_pod_spec(obj.pod.spec)
    elif key == "service":
        default_service(obj.service)
    elif key == "deployment":
        default_deployment(obj.deployment)
    elif key == "replica_set":
        default_replica_set(obj.replica_set)
    elif key == "persistent_volume":
        default_pv(obj.persistent_volume)
    elif key == "persistent_volume_claim":
        default_pvc(obj.persistent_volume_claim)


def initial_status(obj: Object) -> None:
    """Status fields Kubernetes sets at creation."""
    key = obj.WhichOneof("kind")
    if key == "pod" and not obj.pod.status.phase:
        obj.pod.status.phase = "Pending"
    elif key == "namespace" and not obj.namespace.status.phase:
        obj.namespace.status.phase = "Active"
    elif key == "persistent_volume" and not obj.persistent_volume.status.phase:
        obj.persistent_volume.status.phase = "Pending"
    elif key == "persistent_volume_claim" and not obj.persistent_volume_claim.status.phase:
        obj.persistent_volume_claim.status.phase = "Pending"
