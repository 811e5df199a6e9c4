"""Store-side validation: names, namespaces, immutable fields; per-kind schema checks come from
`pinnace.manifest.validate` (shared with the CLI) when it is available.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
from collections.abc import Callable
from typing import Any

import grpc

from pinnace.api.object_pb2 import Object
from pinnace.common import kinds
from services.store.registry.errors import StoreError, invalid

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Kinds whose names are DNS labels (no dots), as in Kubernetes.
_LABEL_NAMED = {"namespace", "service"}
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")

_validator: Callable[[Any], Any] | None = None
_validator_checked = False


def _external_validator() -> Callable[[Any], Any] | None:
    global _validator, _validator_checked
    if not _validator_checked:
        try:
            mod = importlib.import_module("pinnace.manifest")
            fn = getattr(mod, "validate", None)
            if fn is None:
                fn = getattr(importlib.import_module("pinnace.manifest.validation"), "validate", None)
            _validator = fn
            _validator_checked = fn is not None
        except ImportError:
            _validator = None  # not written yet: try again next time
    return _validator


def run_external_validation(obj: Object) -> None:
    fn = _external_validator()
    if fn is None:
        return
    try:
        res = fn(obj)
    except ValueError as e:
        raise StoreError(grpc.StatusCode.INVALID_ARGUMENT, str(e)) from None
    if res:
        problems = list(res) if isinstance(res, list | tuple) else [res]
        raise StoreError(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(str(p) for p in problems[:5]))


def validate_name(info: kinds.KindInfo, name: str) -> None:
    if not name:
        raise invalid("metadata.name", "Required value: name or generateName is required")
    limit = 63 if info.key in _LABEL_NAMED else 253
    pattern = _DNS1123_LABEL if info.key in _LABEL_NAMED else _DNS1123_SUBDOMAIN
    if len(name) > limit or not pattern.match(name):
        what = "RFC 1123 label" if info.key in _LABEL_NAMED else "RFC 1123 subdomain"
        chars = "'-'" if info.key in _LABEL_NAMED else "'-' or '.'"
        raise invalid(
            "metadata.name",
            f"Invalid value: {name!r}: a lowercase {what} must consist of lower case alphanumeric characters, "
            f"{chars}, start and end with an alphanumeric character, at most {limit} characters",
        )


def validate_labels(obj: Object) -> None:
    m = kinds.meta(obj)
    for k, v in m.labels.items():
        name = k.rpartition("/")[2]
        if not name or len(name) > 63 or not _LABEL_NAME.match(name):
            raise invalid(f"metadata.labels[{k}]", f"Invalid value: {k!r}: not a valid label key")
        if len(v) > 63 or not _LABEL_VALUE.match(v):
            raise invalid(f"metadata.labels[{k}]", f"Invalid value: {v!r}: not a valid label value")


def validate_service(obj: Object) -> None:
    s = obj.service.spec
    if s.type not in SERVICE_TYPES:
        raise invalid("spec.type", f"Unsupported value: {s.type!r}: supported values: {', '.join(SERVICE_TYPES)}")
    if s.type == "ExternalName":
        if not s.external_name:
            raise invalid("spec.externalName", "Required value for type ExternalName")
        return
    if s.cluster_ip and s.cluster_ip != "None":
        try:
            ipaddress.ip_address(s.cluster_ip)
        except ValueError:
            raise invalid("spec.clusterIP", f"Invalid value: {s.cluster_ip!r}: must be a valid IP address") from None
    if not s.ports and s.cluster_ip != "None":
        raise invalid("spec.ports", "Required value")
    names: set[str] = set()
    for i, p in enumerate(s.ports):
        if not 1 <= p.port <= 65535:
            raise invalid(f"spec.ports[{i}].port", f"Invalid value: {p.port}: must be between 1 and 65535")
        if p.protocol not in ("TCP", "UDP", "SCTP"):
            raise invalid(f"spec.ports[{i}].protocol", f"Unsupported value: {p.protocol!r}: TCP, UDP or SCTP")
        if len(s.ports) > 1 and not p.name:
            raise invalid(f"spec.ports[{i}].name", "Required value: ports of a multi-port service need names")
        if p.name in names:
            raise invalid(f"spec.ports[{i}].name", f"Duplicate value: {p.name!r}")
        names.add(p.name)
        if p.node_port and s.type not in ("NodePort", "LoadBalancer"):
            raise invalid(f"spec.ports[{i}].nodePort", "Forbidden: may not be used when `type` is 'ClusterIP'")


def validate_object(obj: Object) -> None:
    """Checks done on create and update (after defaulting)."""
    info = kinds.kind_of(obj)
    m = kinds.meta(obj)
    validate_name(info, m.name)
    validate_labels(obj)
    if info.key == "service":
        validate_service(obj)
    run_external_validation(obj)


# ---------------------------------------------------------------- immutability


def _immutable(field: str) -> StoreError:
    return invalid(field, "field is immutable")


POD_MUTABLE = (
    "spec.containers[*].image, spec.initContainers[*].image, spec.activeDeadlineSeconds, "
    "spec.tolerations (only additions to existing tolerations), spec.terminationGracePeriodSeconds, "
    "spec.nodeName (only when unset)"
)


def check_pod_update(old: Object, new: Object) -> None:
    o, n = old.pod.spec, new.pod.spec
    probe = type(o)()
    probe.CopyFrom(o)
    if len(n.containers) == len(o.containers):
        for pc, nc in zip(probe.containers, n.containers, strict=True):
            pc.image = nc.image
    if len(n.init_containers) == len(o.init_containers):
        for pc, nc in zip(probe.init_containers, n.init_containers, strict=True):
            pc.image = nc.image
    if n.HasField("active_deadline_seconds"):
        probe.active_deadline_seconds = n.active_deadline_seconds
    if n.HasField("termination_grace_period_seconds"):
        probe.termination_grace_period_seconds = n.termination_grace_period_seconds
    old_tols = [t.SerializeToString(deterministic=True) for t in o.tolerations]
    new_tols = [t.SerializeToString(deterministic=True) for t in n.tolerations]
    if new_tols[: len(old_tols)] == old_tols:
        del probe.tolerations[:]
        probe.tolerations.extend(n.tolerations)
    if not o.node_name:
        probe.node_name = n.node_name
    if probe.SerializeToString(deterministic=True) != n.SerializeToString(deterministic=True):
        raise invalid("spec", f"Forbidden: pod updates may not change fields other than {POD_MUTABLE}")


def check_immutable(old: Object, new: Object) -> None:
    """Reject updates of fields that may not change once set."""
    key = old.WhichOneof("kind")
    if key == "pod":
        check_pod_update(old, new)
    elif key in ("deployment", "replica_set"):
        o_sel = getattr(old, key).spec.selector.SerializeToString(deterministic=True)
        n_sel = getattr(new, key).spec.selector.SerializeToString(deterministic=True)
        if o_sel != n_sel:
            raise _immutable("spec.selector")
    elif key == "service":
        o, n = old.service.spec, new.service.spec
        if o.cluster_ip and n.cluster_ip != o.cluster_ip:
            raise _immutable("spec.clusterIP")
    elif key == "persistent_volume_claim":
        o2, n2 = old.persistent_volume_claim.spec, new.persistent_volume_claim.spec
        probe = type(o2)()
        probe.CopyFrom(o2)
        probe.resources.CopyFrom(n2.resources)
        if not o2.volume_name:
            probe.volume_name = n2.volume_name
        if probe.SerializeToString(deterministic=True) != n2.SerializeToString(deterministic=True):
            raise invalid(
                "spec",
                "Forbidden: spec is immutable after creation except resources.requests "
                "and volumeName (only when unset)",
            )
