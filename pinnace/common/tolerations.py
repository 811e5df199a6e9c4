"""Taints and tolerations, matched as Kubernetes does (used by the scheduler and node lifecycle)."""

from __future__ import annotations

from collections.abc import Iterable

from pinnace.api import node_pb2, pod_pb2


def tolerates(tol: pod_pb2.Toleration, taint: node_pb2.Taint) -> bool:
    """Kubernetes' ToleratesTaint: effect matches (or is empty), then Exists or Equal on key/value."""
    if tol.effect and tol.effect != taint.effect:
        return False
    if tol.operator == "Exists":
        return not tol.key or tol.key == taint.key
    if tol.operator not in ("", "Equal"):
        return False
    return tol.key == taint.key and tol.value == taint.value


def untolerated(
    taints: Iterable[node_pb2.Taint], tolerations: Iterable[pod_pb2.Toleration], effects: tuple[str, ...]
) -> list[node_pb2.Taint]:
    """The taints with one of `effects` that no toleration covers."""
    tols = list(tolerations)
    return [t for t in taints if t.effect in effects and not any(tolerates(x, t) for x in tols)]
