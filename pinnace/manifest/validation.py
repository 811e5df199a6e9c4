"""Semantic validation of an Object, per kind: a pure function shared by the CLI and the store.

`validate(obj)` returns FieldProblems whose paths use Kubernetes' camelCase names
(e.g. "spec.containers[0].image"); the loader maps them back to file lines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from pinnace.api import apps_pb2, cluster_pb2, meta_pb2, node_pb2, object_pb2, service_pb2, sla_pb2, storage_pb2
from pinnace.common import kinds
from pinnace.common.selectors import SelectorError, from_label_selector
from pinnace.common.units import UnitError, parse_cost_per_hour, parse_duration, parse_percent
from pinnace.manifest import names
from pinnace.manifest.checks import Problems, has
from pinnace.manifest.podvalidation import PROTOCOLS, host_path, int_or_string_port, nfs, node_selector
from pinnace.manifest.podvalidation import validate_pod_spec as _pod_spec
from pinnace.manifest.problems import FieldProblem

_ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
_SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
_NameRule = Callable[[str], "str | None"]


def validate(obj: object_pb2.Object | Message) -> list[FieldProblem]:
    """Every semantic problem of one object (empty when it is valid)."""
    wrapped = kinds.wrap(obj)
    if wrapped.WhichOneof("kind") is None:
        return [FieldProblem("", "empty object: no kind set")]
    info = kinds.kind_of(wrapped)
    msg = kinds.unwrap(wrapped)
    p = Problems()
    rule = _NAME_RULES.get(info.key, names.dns1123_subdomain)
    _meta(p, kinds.meta(msg), rule, namespaced=info.namespaced)
    check = _BY_KEY.get(info.key)
    if check is not None:
        check(p, msg)
    return p.items


def _meta(p: Problems, m: meta_pb2.ObjectMeta, rule: _NameRule, *, namespaced: bool) -> None:
    if m.name:
        p.check("metadata.name", rule(m.name))
    elif not m.generate_name:
        p.add("metadata.name", "required: name or generateName")
    if m.namespace and namespaced:  # cluster-scoped kinds ignore a namespace, as in Kubernetes
        p.check("metadata.namespace", names.dns1123_label(m.namespace))
    p.labels("metadata.labels", m.labels)
    p.labels("metadata.annotations", m.annotations, values=False)
    for i, ref in enumerate(m.owner_references):
        for field, value in (("apiVersion", ref.api_version), ("kind", ref.kind), ("name", ref.name)):
            p.required(f"metadata.ownerReferences[{i}].{field}", value)


# Pod specs found valid, by their deterministic bytes: a workload's pods share their template's
# spec, so the store validates it once, not once per pod (validation is a pure function of the
# spec; 25 of the store's ~38 µs to prepare a one-container pod). Oldest first out.
_VALID_POD_SPECS: dict[bytes, None] = {}
_VALID_POD_SPECS_MAX = 256


def _pod(p: Problems, msg: Any) -> None:
    key = msg.spec.SerializeToString(deterministic=True)
    if key in _VALID_POD_SPECS:
        return
    before = len(p.items)
    _pod_spec(p, "spec", msg.spec)
    if len(p.items) == before:
        if len(_VALID_POD_SPECS) >= _VALID_POD_SPECS_MAX:
            del _VALID_POD_SPECS[next(iter(_VALID_POD_SPECS))]
        _VALID_POD_SPECS[key] = None


def _workload_selector(p: Problems, spec: apps_pb2.ReplicaSetSpec | apps_pb2.DeploymentSpec) -> None:
    if spec.HasField("replicas"):
        p.at_least("spec.replicas", spec.replicas, 0)
    sel = spec.selector
    if not sel.match_labels and not sel.match_expressions:
        p.add("spec.selector", "required: matchLabels or matchExpressions selecting the template's pods")
    else:
        before = len(p.items)
        p.label_selector("spec.selector", sel)
        if len(p.items) == before:  # a broken selector cannot be matched; its problems are reported already
            _selector_matches_template(p, spec)
    p.labels("spec.template.metadata.labels", spec.template.metadata.labels)
    _pod_spec(p, "spec.template.spec", spec.template.spec, template=True)
    p.at_least("spec.minReadySeconds", spec.min_ready_seconds, 0)


def _selector_matches_template(p: Problems, spec: apps_pb2.ReplicaSetSpec | apps_pb2.DeploymentSpec) -> None:
    try:
        matches = from_label_selector(spec.selector).matches(dict(spec.template.metadata.labels))
    except SelectorError as exc:
        p.add("spec.selector", str(exc))
        return
    if not matches:
        p.add("spec.template.metadata.labels", "must match spec.selector, or the pods would not be counted")


def _replica_set(p: Problems, msg: Any) -> None:
    _workload_selector(p, msg.spec)


def _surge_value(p: Problems, path: str, v: meta_pb2.IntOrString, *, is_unavailable: bool) -> int | None:
    """The value as a number or percentage (None when unset or invalid)."""
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "int_val":
        p.at_least(path, v.int_val, 0)
        return v.int_val
    pct = names.percent(v.str_val)
    if pct is None:
        p.add(path, f"{v.str_val!r} must be a whole number or a percentage such as 25%")
        return None
    if is_unavailable and pct > 100:
        p.add(path, f"{v.str_val!r} must not be more than 100%")
    return pct


def _deployment(p: Problems, msg: Any) -> None:
    spec: apps_pb2.DeploymentSpec = msg.spec
    _workload_selector(p, spec)
    strategy = spec.strategy
    p.enum("spec.strategy.type", strategy.type, ("RollingUpdate", "Recreate"))
    if strategy.HasField("rolling_update"):
        if strategy.type == "Recreate":
            p.add("spec.strategy.rollingUpdate", "may not be set when strategy type is Recreate")
        ru = strategy.rolling_update
        surge = _surge_value(p, "spec.strategy.rollingUpdate.maxSurge", ru.max_surge, is_unavailable=False)
        unavail = _surge_value(p, "spec.strategy.rollingUpdate.maxUnavailable", ru.max_unavailable, is_unavailable=True)
        if surge == 0 and unavail == 0:
            p.add("spec.strategy.rollingUpdate.maxUnavailable", "may not be 0 when maxSurge is 0")
    if spec.HasField("revision_history_limit"):
        p.at_least("spec.revisionHistoryLimit", spec.revision_history_limit, 0)
    if spec.HasField("progress_deadline_seconds"):
        p.at_least("spec.progressDeadlineSeconds", spec.progress_deadline_seconds, 1)
        if spec.progress_deadline_seconds <= spec.min_ready_seconds:
            p.add("spec.progressDeadlineSeconds", "must be greater than minReadySeconds")


def _service(p: Problems, msg: Any) -> None:
    spec: service_pb2.ServiceSpec = msg.spec
    p.enum("spec.type", spec.type, _SERVICE_TYPES)
    p.enum("spec.sessionAffinity", spec.session_affinity, ("None", "ClientIP"))
    p.enum("spec.externalTrafficPolicy", spec.external_traffic_policy, ("Cluster", "Local"))
    p.enum("spec.internalTrafficPolicy", spec.internal_traffic_policy, ("Cluster", "Local"))
    p.enum("spec.ipFamilyPolicy", spec.ip_family_policy, ("SingleStack", "PreferDualStack", "RequireDualStack"))
    for i, fam in enumerate(spec.ip_families):
        p.enum(f"spec.ipFamilies[{i}]", fam, ("IPv4", "IPv6"), empty_ok=False)
    timeout = spec.session_affinity_config.client_ip
    if timeout.HasField("timeout_seconds") and not 1 <= timeout.timeout_seconds <= 86400:
        p.add("spec.sessionAffinityConfig.clientIP.timeoutSeconds", "must be between 1 and 86400")
    if spec.type == "ExternalName":
        p.required("spec.externalName", spec.external_name, "the DNS name this service points to")
    headless = spec.cluster_ip == "None"
    if spec.cluster_ip and not headless:
        p.ip("spec.clusterIP", spec.cluster_ip)
    if headless and spec.type not in ("", "ClusterIP"):
        p.add("spec.clusterIP", f"may not be None for a {spec.type} service")
    if not spec.ports and spec.type != "ExternalName" and not headless:
        p.add("spec.ports", "required: at least one port")
    seen: set[str] = set()
    for i, port in enumerate(spec.ports):
        ppath = f"spec.ports[{i}]"
        p.port(f"{ppath}.port", port.port)
        p.enum(f"{ppath}.protocol", port.protocol, PROTOCOLS)
        int_or_string_port(p, f"{ppath}.targetPort", port.target_port, required=False)
        if port.node_port:
            p.port(f"{ppath}.nodePort", port.node_port)
            if spec.type not in ("NodePort", "LoadBalancer"):
                p.add(f"{ppath}.nodePort", "may only be set when type is NodePort or LoadBalancer")
        if len(spec.ports) > 1 and not port.name:
            p.add(f"{ppath}.name", "required when a service has more than one port")
        if port.name:
            p.check(f"{ppath}.name", names.dns1123_label(port.name))
            if port.name in seen:
                p.add(f"{ppath}.name", f"duplicate port name {port.name!r}")
            seen.add(port.name)
    p.labels("spec.selector", spec.selector)
    for i, ip in enumerate(spec.external_ips):
        p.ip(f"spec.externalIPs[{i}]", ip)


def _endpoints(p: Problems, msg: Any) -> None:
    ep: service_pb2.Endpoints = msg
    for i, subset in enumerate(ep.subsets):
        spath = f"subsets[{i}]"
        for part, addrs in (("addresses", subset.addresses), ("notReadyAddresses", subset.not_ready_addresses)):
            for j, a in enumerate(addrs):
                if p.required(f"{spath}.{part}[{j}].ip", a.ip):
                    p.ip(f"{spath}.{part}[{j}].ip", a.ip)
        for j, port in enumerate(subset.ports):
            p.port(f"{spath}.ports[{j}].port", port.port)
            p.enum(f"{spath}.ports[{j}].protocol", port.protocol, PROTOCOLS)


def _access_modes(p: Problems, path: str, modes: Any) -> None:
    if not modes:
        p.add(path, f"required: at least one of {', '.join(_ACCESS_MODES)}")
    for i, mode in enumerate(modes):
        p.enum(f"{path}[{i}]", mode, _ACCESS_MODES, empty_ok=False)


def _persistent_volume(p: Problems, msg: Any) -> None:
    spec: storage_pb2.PersistentVolumeSpec = msg.spec
    if "storage" not in spec.capacity:
        p.add("spec.capacity", "required: storage, the size of the volume (e.g. 10Gi)")
    for name, q in spec.capacity.items():
        p.quantity(f"spec.capacity[{name}]", q.value)
    _access_modes(p, "spec.accessModes", spec.access_modes)
    p.enum("spec.persistentVolumeReclaimPolicy", spec.persistent_volume_reclaim_policy, ("Retain", "Recycle", "Delete"))
    p.enum("spec.volumeMode", spec.volume_mode, ("Filesystem", "Block"))
    sources = [j for n, j in (("host_path", "hostPath"), ("nfs", "nfs"), ("local", "local")) if has(spec, n)]
    if len(sources) != 1:
        what = "none" if not sources else " and ".join(sources)
        p.add("spec", f"must have exactly one volume source (hostPath, nfs or local), has {what}")
    if spec.HasField("host_path"):
        host_path(p, "spec.hostPath", spec.host_path)
    if spec.HasField("nfs"):
        nfs(p, "spec.nfs", spec.nfs)
    if spec.HasField("local"):
        p.required("spec.local.path", spec.local.path)
        if not spec.node_affinity.HasField("required"):
            p.add("spec.nodeAffinity", "required for a local volume: the node the disk is on")
    if spec.node_affinity.HasField("required"):
        node_selector(p, "spec.nodeAffinity.required", spec.node_affinity.required)


def _persistent_volume_claim(p: Problems, msg: Any) -> None:
    spec: storage_pb2.PersistentVolumeClaimSpec = msg.spec
    _access_modes(p, "spec.accessModes", spec.access_modes)
    if "storage" not in spec.resources.requests:
        p.add("spec.resources.requests", "required: storage, the size wanted (e.g. 3Gi)")
    for part, values in (("requests", spec.resources.requests), ("limits", spec.resources.limits)):
        for name, q in values.items():
            p.quantity(f"spec.resources.{part}[{name}]", q.value)
    p.enum("spec.volumeMode", spec.volume_mode, ("Filesystem", "Block"))
    p.label_selector("spec.selector", spec.selector)


def _storage_class(p: Problems, msg: Any) -> None:
    sc: storage_pb2.StorageClass = msg
    p.required("provisioner", sc.provisioner, "e.g. pinnace.io/hostpath or kubernetes.io/no-provisioner")
    p.enum("reclaimPolicy", sc.reclaim_policy, ("Delete", "Retain"))
    p.enum("volumeBindingMode", sc.volume_binding_mode, ("Immediate", "WaitForFirstConsumer"))
    for i, term in enumerate(sc.allowed_topologies):
        for j, req in enumerate(term.match_label_expressions):
            rpath = f"allowedTopologies[{i}].matchLabelExpressions[{j}]"
            p.required(f"{rpath}.key", req.key)
            p.required(f"{rpath}.values", list(req.values))


def _node(p: Problems, msg: Any) -> None:
    node: node_pb2.Node = msg
    if node.spec.pod_cidr:
        p.cidr("spec.podCIDR", node.spec.pod_cidr)
    for i, cidr in enumerate(node.spec.pod_cidrs):
        p.cidr(f"spec.podCIDRs[{i}]", cidr)
    for i, t in enumerate(node.spec.taints):
        tpath = f"spec.taints[{i}]"
        if p.required(f"{tpath}.key", t.key):
            p.check(f"{tpath}.key", names.qualified_name(t.key))
        if t.value:
            p.check(f"{tpath}.value", names.label_value(t.value))
        p.enum(f"{tpath}.effect", t.effect, ("NoSchedule", "PreferNoSchedule", "NoExecute"), empty_ok=False)
    for part, values in (("capacity", node.status.capacity), ("allocatable", node.status.allocatable)):
        for name, q in values.items():
            p.quantity(f"status.{part}[{name}]", q.value)
    for i, a in enumerate(node.status.addresses):
        p.enum(
            f"status.addresses[{i}].type",
            a.type,
            ("InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS"),
            empty_ok=False,
        )
        p.required(f"status.addresses[{i}].address", a.address)
    for i, c in enumerate(node.status.conditions):
        p.required(f"status.conditions[{i}].type", c.type)
        p.enum(f"status.conditions[{i}].status", c.status, ("True", "False", "Unknown"), empty_ok=False)


def _namespace(p: Problems, msg: Any) -> None:
    ns: cluster_pb2.Namespace = msg
    p.enum("status.phase", ns.status.phase, ("Active", "Terminating"))


def _event(p: Problems, msg: Any) -> None:
    ev: cluster_pb2.Event = msg
    p.enum("type", ev.type, ("Normal", "Warning"))
    p.required("involvedObject.name", ev.involved_object.name, "the object the event is about")
    p.at_least("count", ev.count, 0)


def _lease(p: Problems, msg: Any) -> None:
    lease: cluster_pb2.Lease = msg
    if lease.spec.HasField("lease_duration_seconds"):
        p.at_least("spec.leaseDurationSeconds", lease.spec.lease_duration_seconds, 1)
    if lease.spec.HasField("lease_transitions"):
        p.at_least("spec.leaseTransitions", lease.spec.lease_transitions, 0)


def _api_sla(p: Problems, msg: Any) -> None:
    spec: sla_pb2.ApiSlaSpec = msg.spec
    units: list[tuple[str, str, Callable[[str], float]]] = [
        ("spec.percent", spec.percent, parse_percent),
        ("spec.latency", spec.latency, parse_duration),
        ("spec.cost", spec.cost, parse_cost_per_hour),
        ("spec.window", spec.window, parse_duration),
    ]
    for path, text, parse in units:
        if text:
            try:
                parse(text)
            except UnitError as exc:
                p.add(path, str(exc))
    p.required("spec.latency", spec.latency, "the latency objective, e.g. 200ms")
    if p.required("spec.selector", dict(spec.selector), "labels of the pods the agreement covers"):
        p.labels("spec.selector", spec.selector)
    p.enum("spec.target.kind", spec.target.kind, ("Deployment",))
    low = spec.min_replicas if spec.HasField("min_replicas") else 1
    if spec.HasField("min_replicas"):
        p.at_least("spec.minReplicas", spec.min_replicas, 1)
    if spec.HasField("max_replicas"):
        p.at_least("spec.maxReplicas", spec.max_replicas, 1)
        if spec.max_replicas < low:
            p.add("spec.maxReplicas", f"must not be less than minReplicas ({low})")
    if spec.HasField("probe_rate") and not spec.probe_rate > 0:
        p.add("spec.probeRate", f"must be above 0 requests per second, not {spec.probe_rate:g}")
    p.port("spec.probe.port", spec.probe.port, zero_ok=True)


_BY_KEY: dict[str, Callable[[Problems, Any], None]] = {
    "pod": _pod,
    "replica_set": _replica_set,
    "deployment": _deployment,
    "service": _service,
    "endpoints": _endpoints,
    "persistent_volume": _persistent_volume,
    "persistent_volume_claim": _persistent_volume_claim,
    "storage_class": _storage_class,
    "node": _node,
    "namespace": _namespace,
    "event": _event,
    "lease": _lease,
    "api_sla": _api_sla,
}

_NAME_RULES: dict[str, _NameRule] = {
    "namespace": names.dns1123_label,
    "service": names.dns1035_label,
}
