"""Table columns per kind, as kubectl prints them: a small table of (header, getter, wide-only).

Kinds without an entry get NAME and AGE (plus NAMESPACE with -A), so a new kind works at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pinnace.cli.output import age

Getter = Callable[[Any], str]


@dataclass(frozen=True)
class Column:
    header: str
    get: Getter
    wide: bool = False


def _name(o: Any) -> str:
    return str(o.metadata.name)


def _age(o: Any) -> str:
    return age(o.metadata.creation_timestamp)


def _labels(m: Any) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(m.items())) or "<none>"


def _selector(sel: Any) -> str:
    parts = [f"{k}={v}" for k, v in sorted(sel.match_labels.items())]
    for e in sel.match_expressions:
        parts.append(f"{e.key} {e.operator.lower()} ({','.join(e.values)})" if e.values else f"{e.key} {e.operator}")
    return ",".join(parts) or "<none>"


# -- pods -----------------------------------------------------------------------------------------


def pod_status(p: Any) -> str:
    """The STATUS column: Terminating, a waiting/terminated reason, Init:x/y, or the phase."""
    if p.metadata.HasField("deletion_timestamp"):
        return "Terminating"
    if p.status.reason:
        return str(p.status.reason)
    total_init = len(p.spec.init_containers)
    for i, cs in enumerate(p.status.init_container_statuses):
        if cs.state.HasField("terminated") and cs.state.terminated.exit_code == 0:
            continue
        if cs.state.HasField("waiting") and cs.state.waiting.reason and cs.state.waiting.reason != "PodInitializing":
            return f"Init:{cs.state.waiting.reason}"
        if cs.state.HasField("terminated"):
            return f"Init:{cs.state.terminated.reason or 'Error'}"
        return f"Init:{i}/{total_init}"
    reason = ""
    for cs in p.status.container_statuses:
        if cs.state.HasField("waiting") and cs.state.waiting.reason:
            reason = cs.state.waiting.reason
        elif cs.state.HasField("terminated") and cs.state.terminated.reason:
            reason = cs.state.terminated.reason
    if reason and not (p.status.phase == "Running" and reason in ("Completed",)):
        return str(reason)
    return str(p.status.phase or "Pending")


def _pod_ready(p: Any) -> str:
    ready = sum(1 for cs in p.status.container_statuses if cs.ready)
    return f"{ready}/{len(p.spec.containers)}"


def _pod_restarts(p: Any) -> str:
    return str(sum(cs.restart_count for cs in p.status.container_statuses))


# -- nodes ----------------------------------------------------------------------------------------


def node_status(n: Any) -> str:
    status = "Unknown"
    for c in n.status.conditions:
        if c.type == "Ready":
            status = "Ready" if c.status == "True" else "NotReady"
    if n.spec.unschedulable:
        status += ",SchedulingDisabled"
    return status


def node_address(n: Any, kind: str = "InternalIP") -> str:
    return next((a.address for a in n.status.addresses if a.type == kind), "<none>")


def _node_roles(n: Any) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = [k[len(prefix) :] for k in n.metadata.labels if k.startswith(prefix)]
    return ",".join(sorted(roles)) or "<none>"


# -- services -------------------------------------------------------------------------------------


def _svc_ports(s: Any) -> str:
    out = []
    for p in s.spec.ports:
        text = f"{p.port}:{p.node_port}" if p.node_port else str(p.port)
        out.append(f"{text}/{p.protocol or 'TCP'}")
    return ",".join(out) or "<none>"


def _svc_external(s: Any) -> str:
    ips = list(s.spec.external_ips) + [i.ip or i.hostname for i in s.status.load_balancer.ingress]
    if ips:
        return ",".join(ips)
    return "<pending>" if s.spec.type == "LoadBalancer" else "<none>"


def _endpoints(e: Any) -> str:
    addrs = [
        f"{a.ip}:{p.port}" if s.ports else a.ip for s in e.subsets for a in s.addresses for p in (s.ports or [None])
    ]
    if not addrs:
        return "<none>"
    more = len(addrs) - 3
    return ",".join(addrs[:3]) + (f" + {more} more..." if more > 0 else "")


# -- workloads ------------------------------------------------------------------------------------


def _replicas(o: Any) -> int:
    return int(o.spec.replicas) if o.spec.HasField("replicas") else 1


def _containers(o: Any) -> str:
    return ",".join(c.name for c in o.spec.template.spec.containers)


def _images(o: Any) -> str:
    return ",".join(c.image for c in o.spec.template.spec.containers)


# -- storage --------------------------------------------------------------------------------------

_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}


def _modes(ms: Any) -> str:
    return ",".join(_MODES.get(m, m) for m in ms)


def _storage(m: Any) -> str:
    q = m.get("storage") if hasattr(m, "get") else None
    return str(q.value) if q is not None else ""


def _claim(pv: Any) -> str:
    r = pv.spec.claim_ref
    return f"{r.namespace}/{r.name}" if r.name else ""


def _pvc_class(c: Any) -> str:
    return str(c.spec.storage_class_name) if c.spec.HasField("storage_class_name") else ""


def _lease_holder(le: Any) -> str:
    return str(le.spec.holder_identity) or "<none>"


def _event_object(e: Any) -> str:
    return f"{e.involved_object.kind.lower()}/{e.involved_object.name}"


def _event_last_seen(e: Any) -> str:
    ts = e.last_timestamp if e.HasField("last_timestamp") else e.metadata.creation_timestamp
    return age(ts)


# -- service level agreements ---------------------------------------------------------------------


def _sla_target(s: Any) -> str:
    return f"{s.spec.percent or '99%'}<={s.spec.latency or '?'}"


def _sla_cost(s: Any) -> str:
    return f"{s.status.current_cost or '?'}/{s.spec.cost or 'none'}"


def sla_state(s: Any) -> str:
    on = {c.type for c in s.status.conditions if c.status == "True"}
    state = next((t for t in ("Violated", "AtRisk", "Met") if t in on), "Unknown")
    return state + (",OverBudget" if "OverBudget" in on else "")


COLUMNS: dict[str, list[Column]] = {
    "pod": [
        Column("NAME", _name),
        Column("READY", _pod_ready),
        Column("STATUS", pod_status),
        Column("RESTARTS", _pod_restarts),
        Column("AGE", _age),
        Column("IP", lambda p: p.status.pod_ip or "<none>", wide=True),
        Column("NODE", lambda p: p.spec.node_name or "<none>", wide=True),
        Column("NOMINATED NODE", lambda p: p.status.nominated_node_name or "<none>", wide=True),
    ],
    "node": [
        Column("NAME", _name),
        Column("STATUS", node_status),
        Column("ROLES", _node_roles),
        Column("AGE", _age),
        Column("VERSION", lambda n: n.status.node_info.kubelet_version or "<unknown>"),
        Column("INTERNAL-IP", node_address, wide=True),
        Column("POD-CIDR", lambda n: n.spec.pod_cidr or "<none>", wide=True),
        Column("OS-IMAGE", lambda n: n.status.node_info.os_image or "<unknown>", wide=True),
        Column("KERNEL-VERSION", lambda n: n.status.node_info.kernel_version or "<unknown>", wide=True),
        Column("CONTAINER-RUNTIME", lambda n: n.status.node_info.container_runtime_version or "<unknown>", wide=True),
    ],
    "service": [
        Column("NAME", _name),
        Column("TYPE", lambda s: s.spec.type or "ClusterIP"),
        Column("CLUSTER-IP", lambda s: s.spec.cluster_ip or "<none>"),
        Column("EXTERNAL-IP", _svc_external),
        Column("PORT(S)", _svc_ports),
        Column("AGE", _age),
        Column("SELECTOR", lambda s: _labels(s.spec.selector), wide=True),
    ],
    "endpoints": [Column("NAME", _name), Column("ENDPOINTS", _endpoints), Column("AGE", _age)],
    "deployment": [
        Column("NAME", _name),
        Column("READY", lambda d: f"{d.status.ready_replicas}/{_replicas(d)}"),
        Column("UP-TO-DATE", lambda d: str(d.status.updated_replicas)),
        Column("AVAILABLE", lambda d: str(d.status.available_replicas)),
        Column("AGE", _age),
        Column("CONTAINERS", _containers, wide=True),
        Column("IMAGES", _images, wide=True),
        Column("SELECTOR", lambda d: _selector(d.spec.selector), wide=True),
    ],
    "replica_set": [
        Column("NAME", _name),
        Column("DESIRED", lambda r: str(_replicas(r))),
        Column("CURRENT", lambda r: str(r.status.replicas)),
        Column("READY", lambda r: str(r.status.ready_replicas)),
        Column("AGE", _age),
        Column("CONTAINERS", _containers, wide=True),
        Column("IMAGES", _images, wide=True),
        Column("SELECTOR", lambda r: _selector(r.spec.selector), wide=True),
    ],
    "persistent_volume": [
        Column("NAME", _name),
        Column("CAPACITY", lambda v: _storage(v.spec.capacity)),
        Column("ACCESS MODES", lambda v: _modes(v.spec.access_modes)),
        Column("RECLAIM POLICY", lambda v: v.spec.persistent_volume_reclaim_policy or "Retain"),
        Column("STATUS", lambda v: v.status.phase or "Pending"),
        Column("CLAIM", _claim),
        Column("STORAGECLASS", lambda v: v.spec.storage_class_name),
        Column("REASON", lambda v: v.status.reason),
        Column("AGE", _age),
    ],
    "persistent_volume_claim": [
        Column("NAME", _name),
        Column("STATUS", lambda c: c.status.phase or "Pending"),
        Column("VOLUME", lambda c: c.spec.volume_name),
        Column("CAPACITY", lambda c: _storage(c.status.capacity)),
        Column("ACCESS MODES", lambda c: _modes(c.status.access_modes)),
        Column("STORAGECLASS", _pvc_class),
        Column("AGE", _age),
    ],
    "storage_class": [
        Column("NAME", _name),
        Column("PROVISIONER", lambda s: s.provisioner),
        Column("RECLAIMPOLICY", lambda s: s.reclaim_policy or "Delete"),
        Column("VOLUMEBINDINGMODE", lambda s: s.volume_binding_mode or "Immediate"),
        Column("ALLOWVOLUMEEXPANSION", lambda s: str(s.allow_volume_expansion).lower()),
        Column("AGE", _age),
    ],
    "namespace": [Column("NAME", _name), Column("STATUS", lambda n: n.status.phase or "Active"), Column("AGE", _age)],
    "event": [
        Column("LAST SEEN", _event_last_seen),
        Column("TYPE", lambda e: e.type or "Normal"),
        Column("REASON", lambda e: e.reason),
        Column("OBJECT", _event_object),
        Column("MESSAGE", lambda e: e.message),
    ],
    "lease": [Column("NAME", _name), Column("HOLDER", _lease_holder), Column("AGE", _age)],
    "api_sla": [
        Column("NAME", _name),
        Column("TARGET", _sla_target),
        Column("OBSERVED", lambda s: s.status.observed_latency or "<none>"),
        Column("COMPLIANCE", lambda s: s.status.compliance or "<none>"),
        Column("COST/BUDGET", _sla_cost),
        Column("REPLICAS", lambda s: f"{s.status.current_replicas}/{s.status.desired_replicas}"),
        Column("STATE", sla_state),
        Column("AGE", _age),
        Column("SAMPLES", lambda s: str(s.status.samples), wide=True),
        Column("LAST DECISION", lambda s: s.status.last_decision.reason or "<none>", wide=True),
    ],
}

DEFAULT = [Column("NAME", _name), Column("AGE", _age)]


def columns_for(key: str, *, wide: bool = False, all_namespaces: bool = False, labels: bool = False) -> list[Column]:
    cols = [c for c in COLUMNS.get(key, DEFAULT) if wide or not c.wide]
    if all_namespaces:
        cols = [Column("NAMESPACE", lambda o: str(o.metadata.namespace)), *cols]
    if labels:
        cols.append(Column("LABELS", lambda o: _labels(o.metadata.labels)))
    return cols


def render_rows(objs: list[Any], cols: list[Column]) -> list[list[str]]:
    rows = []
    for o in objs:
        row = []
        for c in cols:
            try:
                row.append(str(c.get(o)))
            except Exception:
                row.append("<error>")
        rows.append(row)
    return rows
