"""What pods cost: resource requests times per-node prices (node labels or annotations
pinnace.io/price-cpu-hour and pinnace.io/price-memory-gib-hour, with cluster defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from pinnace.api import node_pb2, pod_pb2
from pinnace.common.quantity import QuantityError, cpu_millis, to_bytes

PRICE_CPU = "pinnace.io/price-cpu-hour"
PRICE_MEMORY = "pinnace.io/price-memory-gib-hour"
GIB = 2**30


@dataclass(frozen=True)
class Prices:
    cpu_hour: float = 0.04
    memory_gib_hour: float = 0.005


def node_prices(node: node_pb2.Node | None, default: Prices) -> Prices:
    if node is None:
        return default
    values = {**node.metadata.labels, **node.metadata.annotations}

    def pick(key: str, fallback: float) -> float:
        try:
            return float(values[key])
        except (KeyError, ValueError):
            return fallback

    return Prices(pick(PRICE_CPU, default.cpu_hour), pick(PRICE_MEMORY, default.memory_gib_hour))


def pod_requests(spec: pod_pb2.PodSpec) -> tuple[float, float]:
    """(cores, GiB) requested by a pod's containers (limits stand in for missing requests)."""
    cores = 0.0
    gib = 0.0
    for c in spec.containers:
        req, lim = c.resources.requests, c.resources.limits
        try:
            if "cpu" in req or "cpu" in lim:
                cores += cpu_millis((req.get("cpu") or lim["cpu"]).value) / 1000
            if "memory" in req or "memory" in lim:
                gib += to_bytes((req.get("memory") or lim["memory"]).value) / GIB
        except QuantityError:
            continue
    return cores, gib


def pod_cost(spec: pod_pb2.PodSpec, prices: Prices) -> float:
    cores, gib = pod_requests(spec)
    return cores * prices.cpu_hour + gib * prices.memory_gib_hour
