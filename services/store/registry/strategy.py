"""Create/update strategies: system metadata, generation, status isolation, graceful deletion.

Everything nondeterministic (uid, timestamps, generated names, allocations) is decided here,
before the command is proposed, so applying the command is deterministic on every replica.
"""

from __future__ import annotations

import os
import secrets
import time

from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api.object_pb2 import Object
from pinnace.common import kinds
from services.store.registry import defaults, validation
from services.store.registry.errors import invalid

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


def now_ts(offset: float = 0.0) -> Timestamp:
    t = time.time() + offset
    ts = Timestamp()
    ts.seconds = int(t)
    ts.nanos = int((t - int(t)) * 1e9) // 1000 * 1000
    return ts


def generate_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_NAME_CHARS) for _ in range(5))


def has_status(obj: Object) -> bool:
    return "status" in kinds.unwrap(obj).DESCRIPTOR.fields_by_name


def spec_bytes(obj: Object) -> bytes:
    """Everything but metadata and status: what a generation counts changes of."""
    inner = kinds.unwrap(obj)
    probe = type(inner)()
    probe.CopyFrom(inner)
    probe.ClearField("metadata")
    if "status" in probe.DESCRIPTOR.fields_by_name:
        probe.ClearField("status")
    return probe.SerializeToString(deterministic=True)


def new_uid() -> str:
    """A random (version 4) UUID in its usual text form; the same as str(uuid.uuid4()) in half the time."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_VARIANT = "89ab"


def prepare_create(obj: Object) -> None:
    """Default, stamp system metadata and validate a new object (in place)."""
    info = kinds.kind_of(obj)
    m = kinds.meta(obj)
    if info.namespaced:
        if not m.namespace:
            m.namespace = "default"
    elif m.namespace:
        raise invalid("metadata.namespace", f"Forbidden: {info.kind} is not namespaced")
    if not m.name and m.generate_name:
        m.name = generate_name(m.generate_name)
    m.uid = new_uid()
    m.resource_version = ""
    m.generation = 1
    m.creation_timestamp.CopyFrom(now_ts())
    m.ClearField("deletion_timestamp")
    m.ClearField("deletion_grace_period_seconds")
    defaults.apply_defaults(obj)
    defaults.initial_status(obj)
    validation.validate_object(obj)


def prepare_update(old: Object, new: Object) -> None:
    """Turn a client's Update into the stored object (in place on new): status and system
    metadata come from old; generation bumps when the spec changed; immutable fields are checked."""
    if old.WhichOneof("kind") != new.WhichOneof("kind"):
        raise invalid("kind", "cannot change the kind of an object")
    om, nm = kinds.meta(old), kinds.meta(new)
    nm.uid = om.uid
    nm.creation_timestamp.CopyFrom(om.creation_timestamp)
    nm.generate_name = om.generate_name or nm.generate_name
    if om.HasField("deletion_timestamp"):
        nm.deletion_timestamp.CopyFrom(om.deletion_timestamp)
    else:
        nm.ClearField("deletion_timestamp")
    if om.HasField("deletion_grace_period_seconds"):
        nm.deletion_grace_period_seconds = om.deletion_grace_period_seconds
    else:
        nm.ClearField("deletion_grace_period_seconds")
    if om.HasField("deletion_timestamp"):
        added = set(nm.finalizers) - set(om.finalizers)
        if added:
            raise invalid(
                "metadata.finalizers",
                "Forbidden: no new finalizers can be added if the object is being deleted, "
                f"found new finalizers {sorted(added)}",
            )
    nm.resource_version = ""
    inner_new = kinds.unwrap(new)
    if has_status(old):
        inner_new.status.CopyFrom(kinds.unwrap(old).status)  # type: ignore[attr-defined]
    _carry_allocations(old, new)
    defaults.apply_defaults(new)
    validation.check_immutable(old, new)
    nm.generation = om.generation + (1 if spec_bytes(old) != spec_bytes(new) else 0)
    validation.validate_object(new)


def _carry_allocations(old: Object, new: Object) -> None:
    """Keep the allocated clusterIP and node ports when an update leaves them empty."""
    if new.WhichOneof("kind") != "service":
        return
    o, n = old.service.spec, new.service.spec
    if not n.cluster_ip and o.cluster_ip:
        n.cluster_ip = o.cluster_ip
        del n.cluster_ips[:]
        n.cluster_ips.extend(o.cluster_ips)
    if n.type in ("NodePort", "LoadBalancer"):
        old_ports = {(p.port, p.protocol or "TCP"): p.node_port for p in o.ports if p.node_port}
        for p in n.ports:
            if not p.node_port:
                p.node_port = old_ports.get((p.port, p.protocol or "TCP"), 0)


def prepare_update_status(old: Object, new: Object) -> Object:
    """The stored object after UpdateStatus: old with only its status replaced."""
    if old.WhichOneof("kind") != new.WhichOneof("kind"):
        raise invalid("kind", "cannot change the kind of an object")
    out = Object()
    out.CopyFrom(old)
    if has_status(out):
        kinds.unwrap(out).status.CopyFrom(kinds.unwrap(new).status)  # type: ignore[attr-defined]
    kinds.meta(out).resource_version = ""
    return out


def deletion_grace(obj: Object, requested: int | None) -> int:
    """The grace period a Delete gets: requested, else the pod's own, else 0."""
    if requested is not None:
        return max(0, requested)
    if obj.WhichOneof("kind") == "pod":
        spec = obj.pod.spec
        if spec.HasField("termination_grace_period_seconds"):
            return max(0, spec.termination_grace_period_seconds)
        return defaults.DEFAULT_GRACE_SECONDS
    return 0


def plan_delete(obj: Object, requested_grace: int | None, propagation: str) -> Object | None:
    """None: delete now. Otherwise the object to store (deletion_timestamp set): graceful deletion."""
    m = kinds.meta(obj)
    policy = (propagation or "").strip()
    if policy and policy not in ("Background", "Foreground", "Orphan"):
        raise invalid("propagationPolicy", f"Unsupported value: {policy!r}: Background, Foreground or Orphan")
    out = Object()
    out.CopyFrom(obj)
    om = kinds.meta(out)
    om.resource_version = ""
    changed = False
    if policy == "Foreground" and FOREGROUND not in om.finalizers:
        om.finalizers.append(FOREGROUND)
        changed = True
    if policy == "Orphan" and ORPHAN not in om.finalizers:
        om.finalizers.append(ORPHAN)
        changed = True
    grace = deletion_grace(obj, requested_grace)
    is_bound_pod = obj.WhichOneof("kind") == "pod" and bool(obj.pod.spec.node_name)
    graceful = is_bound_pod and grace > 0
    if m.HasField("deletion_timestamp"):
        # Already terminating: a shorter grace period may be requested; zero deletes at once.
        if is_bound_pod and requested_grace is not None:
            if grace == 0 and not om.finalizers:
                return None
            if grace < om.deletion_grace_period_seconds:
                om.deletion_grace_period_seconds = grace
                om.deletion_timestamp.CopyFrom(now_ts(grace))
                changed = True
        if not om.finalizers and not graceful:
            return None
        return out if changed else obj
    if not om.finalizers and not graceful:
        return None
    om.deletion_timestamp.CopyFrom(now_ts(grace if graceful else 0))
    om.deletion_grace_period_seconds = grace if graceful else 0
    om.generation += 1
    return out
