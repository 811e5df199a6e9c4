"""Pure rollout arithmetic for Deployments: template hashing, maxSurge/maxUnavailable, revisions.

Kept free of I/O so the rolling-update rules can be tested on their own.
"""

from __future__ import annotations

import math

from pinnace.api import apps_pb2, meta_pb2, pod_pb2

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def _encode(n: int) -> str:
    out = []
    while True:
        n, r = divmod(n, len(_ALPHABET))
        out.append(_ALPHABET[r])
        if n == 0:
            break
    return "".join(out)


def strip_hash(t: pod_pb2.PodTemplateSpec) -> pod_pb2.PodTemplateSpec:
    out = pod_pb2.PodTemplateSpec()
    out.CopyFrom(t)
    out.metadata.labels.pop(HASH_LABEL, None)
    return out


def template_hash(t: pod_pb2.PodTemplateSpec, collision_count: int = 0) -> str:
    """A short, stable name-safe hash of a pod template (without its pod-template-hash label)."""
    data = strip_hash(t).SerializeToString(deterministic=True)
    if collision_count:
        data += collision_count.to_bytes(4, "little")
    return _encode(_fnv32a(data))


def templates_equal(a: pod_pb2.PodTemplateSpec, b: pod_pb2.PodTemplateSpec) -> bool:
    return strip_hash(a).SerializeToString(deterministic=True) == strip_hash(b).SerializeToString(deterministic=True)


def resolve(value: meta_pb2.IntOrString, total: int, round_up: bool, default: str = "25%") -> int:
    """An int-or-percent against `total` (percent rounds up for surge, down for unavailable)."""
    which = value.WhichOneof("value")
    raw: int | str = default
    if which == "int_val":
        raw = value.int_val
    elif which == "str_val":
        raw = value.str_val
    if isinstance(raw, int):
        return max(0, raw)
    s = raw.strip()
    if s.endswith("%"):
        pct = float(s[:-1] or 0)
        v = pct * total / 100.0
        return max(0, math.ceil(v - 1e-9) if round_up else math.floor(v + 1e-9))
    return max(0, int(s))


def replicas_of(d: apps_pb2.Deployment | apps_pb2.ReplicaSet) -> int:
    return d.spec.replicas if d.spec.HasField("replicas") else 1


def surge_and_unavailable(d: apps_pb2.Deployment) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) resolved; both 0 would deadlock, so maxUnavailable becomes 1."""
    r = replicas_of(d)
    ru = d.spec.strategy.rolling_update
    surge = resolve(ru.max_surge, r, round_up=True)
    unavail = resolve(ru.max_unavailable, r, round_up=False)
    if surge == 0 and unavail == 0:
        unavail = 1
    return surge, unavail


def revision_of(rs: apps_pb2.ReplicaSet) -> int:
    try:
        return int(rs.metadata.annotations.get(REVISION, "0"))
    except ValueError:
        return 0


def new_rs_replicas(d: apps_pb2.Deployment, all_rs: list[apps_pb2.ReplicaSet], new: apps_pb2.ReplicaSet) -> int:
    """How many replicas the new ReplicaSet may have now (RollingUpdate): up to maxSurge above desired."""
    want = replicas_of(d)
    current_new = replicas_of(new)
    if current_new >= want:
        return want
    surge, _ = surge_and_unavailable(d)
    total = sum(replicas_of(rs) for rs in all_rs)
    room = want + surge - total
    if room <= 0:
        return current_new
    return current_new + min(room, want - current_new)


def old_scale_down_budget(
    d: apps_pb2.Deployment, all_rs: list[apps_pb2.ReplicaSet], new: apps_pb2.ReplicaSet | None
) -> int:
    """How many old replicas may go now without dropping below replicas - maxUnavailable available."""
    _, unavail = surge_and_unavailable(d)
    min_available = replicas_of(d) - unavail
    all_pods = sum(replicas_of(rs) for rs in all_rs)
    new_unavailable = 0
    if new is not None:
        new_unavailable = max(0, replicas_of(new) - new.status.available_replicas)
    return all_pods - min_available - new_unavailable


def available_budget(d: apps_pb2.Deployment, all_rs: list[apps_pb2.ReplicaSet]) -> int:
    """Available pods above the minimum: how many healthy old pods may be taken down."""
    _, unavail = surge_and_unavailable(d)
    min_available = replicas_of(d) - unavail
    return sum(rs.status.available_replicas for rs in all_rs) - min_available
