"""Who may do what in the store. Identities come from client certificates (pinnace.common.auth):

- "admin" and "store" (peers): everything.
- "controllers": everything (node lifecycle writes node conditions, IPAM podCIDRs, GC deletes).
- "scheduler": read everything, bind and mark pods, create and update Events, its Lease.
- "node:NAME": read everything; create and update its own Node and its Lease
  (kube-node-lease/NAME); update the status of, and delete, pods bound to it; Events; the
  volume binder's PersistentVolumes, PersistentVolumeClaims and Leases in pinnace-system.
- "anonymous" (a plaintext connection; only when the store runs without TLS): everything.
Everything else is refused with a message that says who, what and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from pinnace.api import object_pb2

READ_VERBS = frozenset({"get", "list", "watch", "status"})
WRITE_VERBS = frozenset({"create", "update", "update_status", "delete"})
ALL = frozenset({"namespace", "node", "pod", "service", "endpoints", "persistent_volume",
                 "persistent_volume_claim", "storage_class", "replica_set", "deployment", "event", "lease",
                 "api_sla"})  # fmt: skip


@dataclass(frozen=True)
class Request:
    identity: str
    verb: str  # get, list, watch, create, update, update_status, delete, status, compact
    kind: str  # Object oneof key
    namespace: str = ""
    name: str = ""
    # The object as stored now (update/delete) and as proposed (create/update).
    current: object_pb2.Object | None = None
    proposed: object_pb2.Object | None = None


def _bound_node(obj: object_pb2.Object | None) -> str:
    return obj.pod.spec.node_name if obj is not None and obj.WhichOneof("kind") == "pod" else ""


def check(req: Request) -> str | None:
    """None when allowed, else the reason for PERMISSION_DENIED."""
    ident = req.identity
    if ident in ("admin", "store", "anonymous"):
        return None
    if req.verb in READ_VERBS:
        return None
    what = f"{req.verb} {req.kind} {req.namespace + '/' if req.namespace else ''}{req.name}".rstrip()
    if ident == "controllers":
        return None
    if ident == "scheduler":
        if req.kind == "event" and req.verb in ("create", "update"):
            return None
        if req.kind == "pod" and req.verb in ("update", "update_status"):
            return None
        if req.kind == "lease" and req.namespace == "pinnace-system":
            return None
        return f"scheduler may not {what}: it only binds pods and records events"
    if ident.startswith("node:"):
        node = ident.split(":", 1)[1]
        if req.kind == "node" and req.verb in ("create", "update", "update_status"):
            if req.name == node:
                return None
            return f"{ident} may not {what}: a node may only change its own Node object"
        if req.kind == "lease" and req.namespace == "kube-node-lease":
            if req.name == node:
                return None
            return f"{ident} may not {what}: a node may only renew its own Lease"
        if req.kind == "pod" and req.verb in ("update_status", "delete"):
            if _bound_node(req.current) == node:
                return None
            return f"{ident} may not {what}: the pod is not bound to {node}"
        if req.kind == "event" and req.verb in ("create", "update"):
            return None
        if req.kind in ("persistent_volume", "persistent_volume_claim"):
            return None  # the volume binder runs in a node's volume agent
        if req.kind == "lease" and req.namespace == "pinnace-system":
            return None
        return f"{ident} may not {what}"
    return f"unknown identity {ident!r} may not {what}"
