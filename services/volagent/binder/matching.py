"""Pure rules: which Available volume satisfies a claim (class, access modes, capacity, selector, mode)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from pinnace.api import pod_pb2, storage_pb2
from pinnace.common.quantity import QuantityError, to_bytes
from pinnace.common.selectors import SelectorError, from_label_selector

ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
HOSTNAME_LABEL = "kubernetes.io/hostname"
PVC_PROTECTION = "kubernetes.io/pvc-protection"


def claim_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


@functools.lru_cache(maxsize=4096)
def _bytes(text: str) -> int:
    try:
        return to_bytes(text)
    except QuantityError:
        return 0


def requested_bytes(claim: storage_pb2.PersistentVolumeClaim) -> int:
    q = claim.spec.resources.requests.get("storage")
    return _bytes(q.value) if q is not None and q.value else 0


def capacity_bytes(pv: storage_pb2.PersistentVolume) -> int:
    q = pv.spec.capacity.get("storage")
    return _bytes(q.value) if q is not None and q.value else 0


def claim_class(claim: storage_pb2.PersistentVolumeClaim, default_class: str) -> str:
    """The claim's storage class: as written, or the default class when the field is unset."""
    if claim.spec.HasField("storage_class_name"):
        return claim.spec.storage_class_name
    return default_class


def default_class(classes: Iterable[storage_pb2.StorageClass]) -> str:
    names = sorted(c.metadata.name for c in classes if c.metadata.annotations.get(DEFAULT_CLASS_ANNOTATION) == "true")
    return names[0] if names else ""


def ref_matches(pv: storage_pb2.PersistentVolume, claim: storage_pb2.PersistentVolumeClaim) -> bool:
    """PV's claimRef names this claim (and, if it carries a uid, this incarnation of it)."""
    ref = pv.spec.claim_ref
    if ref.name != claim.metadata.name or ref.namespace != claim.metadata.namespace:
        return False
    return not ref.uid or ref.uid == claim.metadata.uid


def modes_ok(claim: storage_pb2.PersistentVolumeClaim, pv: storage_pb2.PersistentVolume) -> bool:
    have = set(pv.spec.access_modes)
    return all(m in have for m in claim.spec.access_modes)


def mismatch(claim: storage_pb2.PersistentVolumeClaim, pv: storage_pb2.PersistentVolume, cls: str) -> str:
    """Why pv cannot serve claim ("" when it can); the claim's class is cls."""
    if pv.spec.storage_class_name != cls:
        return f"storage class {pv.spec.storage_class_name!r} is not the claim's {cls!r}"
    if not modes_ok(claim, pv):
        return f"access modes {list(pv.spec.access_modes)} do not include {list(claim.spec.access_modes)}"
    if capacity_bytes(pv) < requested_bytes(claim):
        return "capacity is smaller than the request"
    if (claim.spec.volume_mode or "Filesystem") != (pv.spec.volume_mode or "Filesystem"):
        return f"volume mode {pv.spec.volume_mode or 'Filesystem'} differs"
    if claim.spec.HasField("selector"):
        try:
            if not from_label_selector(claim.spec.selector).matches(pv.metadata.labels):
                return "labels do not match the claim's selector"
        except SelectorError as exc:
            return f"bad selector: {exc}"
    return ""


def node_matches(pv: storage_pb2.PersistentVolume, node_labels: Mapping[str, str] | None) -> bool:
    """PV node affinity against a node's labels (None: no node chosen yet, anything goes)."""
    if node_labels is None or not pv.spec.HasField("node_affinity"):
        return True
    terms = pv.spec.node_affinity.required.node_selector_terms
    if not terms:
        return True
    return any(_term_matches(t, node_labels) for t in terms)


def _term_matches(term: pod_pb2.NodeSelectorTerm, labels: Mapping[str, str]) -> bool:
    for r in term.match_expressions:
        v = labels.get(r.key)
        op = r.operator
        if op == "In" and v not in r.values:
            return False
        if op == "NotIn" and v in r.values:
            return False
        if op == "Exists" and v is None:
            return False
        if op == "DoesNotExist" and v is not None:
            return False
        if op in ("Gt", "Lt"):
            try:
                a, b = int(v or ""), int(r.values[0])
            except (ValueError, IndexError):
                return False
            if (op == "Gt" and not a > b) or (op == "Lt" and not a < b):
                return False
    return True


def is_available(pv: storage_pb2.PersistentVolume) -> bool:
    return (
        not pv.spec.claim_ref.name
        and not pv.metadata.HasField("deletion_timestamp")
        and pv.status.phase in ("", "Pending", "Available")
    )


def best_match(
    claim: storage_pb2.PersistentVolumeClaim,
    volumes: Iterable[storage_pb2.PersistentVolume],
    cls: str,
    node_labels: Mapping[str, str] | None = None,
    exclude: frozenset[str] = frozenset(),
) -> storage_pb2.PersistentVolume | None:
    """The smallest Available volume that satisfies the claim (ties: by name)."""
    best: storage_pb2.PersistentVolume | None = None
    best_key: tuple[int, str] = (0, "")
    want = requested_bytes(claim)
    for pv in volumes:
        cap = capacity_bytes(pv)
        if cap < want or pv.metadata.name in exclude:
            continue
        key = (cap, pv.metadata.name)
        if best is not None and key >= best_key:
            continue  # cheap checks first: it would not beat the current best anyway
        if not is_available(pv) or mismatch(claim, pv, cls) or not node_matches(pv, node_labels):
            continue
        best, best_key = pv, key
    return best


def pinned_node(pv: storage_pb2.PersistentVolume) -> str | None:
    """The one node a PV's data lives on (node affinity kubernetes.io/hostname In [node]), if any."""
    terms = pv.spec.node_affinity.required.node_selector_terms if pv.spec.HasField("node_affinity") else []
    if len(terms) != 1:
        return None
    exprs = [e for e in terms[0].match_expressions if e.key == HOSTNAME_LABEL and e.operator == "In"]
    if len(exprs) == 1 and len(exprs[0].values) == 1:
        return exprs[0].values[0]
    return None
