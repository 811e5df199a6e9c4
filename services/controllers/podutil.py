"""Pod and ownership helpers shared by the workload controllers."""

from __future__ import annotations

import time
from collections.abc import Iterable

from google.protobuf.message import Message

from pinnace.api import meta_pb2, pod_pb2
from pinnace.common import kinds


def is_active(pod: pod_pb2.Pod) -> bool:
    """Counts toward replicas: not finished and not being deleted."""
    return pod.status.phase not in ("Succeeded", "Failed") and not pod.metadata.HasField("deletion_timestamp")


def ready_condition(pod: pod_pb2.Pod) -> meta_pb2.Condition | None:
    for c in pod.status.conditions:
        if c.type == "Ready":
            return c
    return None


def is_ready(pod: pod_pb2.Pod) -> bool:
    c = ready_condition(pod)
    return c is not None and c.status == "True"


def ready_since(pod: pod_pb2.Pod) -> float:
    c = ready_condition(pod)
    if c is None or not c.HasField("last_transition_time"):
        return 0.0
    return c.last_transition_time.seconds + c.last_transition_time.nanos / 1e9


def is_available(pod: pod_pb2.Pod, min_ready_seconds: int, now: float | None = None) -> bool:
    if not is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = ready_since(pod)
    return since > 0 and (now or time.time()) - since >= min_ready_seconds


def controller_ref(obj: Message) -> meta_pb2.OwnerReference | None:
    for ref in kinds.meta(obj).owner_references:
        if ref.HasField("controller") and ref.controller:
            return ref
    return None


def owner_reference(owner: Message) -> meta_pb2.OwnerReference:
    info = kinds.of_message(owner)
    m = kinds.meta(owner)
    return meta_pb2.OwnerReference(
        api_version=info.api_version, kind=info.kind, name=m.name, uid=m.uid, controller=True, block_owner_deletion=True
    )


def creation_seconds(obj: Message) -> float:
    ts = kinds.meta(obj).creation_timestamp
    return ts.seconds + ts.nanos / 1e9


def deletion_rank(pod: pod_pb2.Pod) -> tuple[int, int, int, float, int, float]:
    """Sort key: the least valuable pods first (unscheduled, pending, not ready, ready for less time,
    more restarts, newest), like the ReplicaSet controller's ActivePods ordering."""
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(pod.status.phase or "Pending", 0)
    restarts = sum(cs.restart_count for cs in pod.status.container_statuses)
    ready = is_ready(pod)
    return (
        1 if pod.spec.node_name else 0,
        phase_rank,
        1 if ready else 0,
        -ready_since(pod) if ready else 0.0,
        -restarts,
        -creation_seconds(pod),
    )


def pods_of(pods: Iterable[pod_pb2.Pod], uid: str) -> list[pod_pb2.Pod]:
    out = []
    for p in pods:
        ref = controller_ref(p)
        if ref is not None and ref.uid == uid:
            out.append(p)
    return out


def copy_of(msg: Message) -> Message:
    out = type(msg)()
    out.CopyFrom(msg)
    return out
