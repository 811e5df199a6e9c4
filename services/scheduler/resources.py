"""Resource arithmetic: what a pod requests and what a node can hold, in millicores, bytes and pod slots."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from pinnace.api import meta_pb2, node_pb2, pod_pb2
from pinnace.common.quantity import QuantityError, cpu_millis, to_bytes

DEFAULT_MAX_PODS = 110
# kube-scheduler scores pods without requests as if they asked for this much (non-zero requests).
DEFAULT_CPU_MILLIS = 100
DEFAULT_MEMORY_BYTES = 200 * 1024 * 1024


@lru_cache(maxsize=4096)
def _cpu_text(text: str) -> int | None:
    try:
        return cpu_millis(text)
    except QuantityError:
        return None


@lru_cache(maxsize=4096)
def _mem_text(text: str) -> int | None:
    try:
        return to_bytes(text)
    except QuantityError:
        return None


def _cpu(q: Mapping[str, meta_pb2.Quantity], name: str = "cpu") -> int | None:
    return _cpu_text(q[name].value) if name in q else None


def _mem(q: Mapping[str, meta_pb2.Quantity], name: str = "memory") -> int | None:
    return _mem_text(q[name].value) if name in q else None


def pod_requests(spec: pod_pb2.PodSpec) -> tuple[int, int, int, int]:
    """(cpu millis, memory bytes, non-zero cpu, non-zero memory): the sum over containers, at least the
    largest init container (as Kubernetes computes the effective request)."""
    cpu = mem = nz_cpu = nz_mem = 0
    for c in spec.containers:
        rc, rm = _cpu(c.resources.requests), _mem(c.resources.requests)
        cpu += rc or 0
        mem += rm or 0
        nz_cpu += rc if rc is not None else DEFAULT_CPU_MILLIS
        nz_mem += rm if rm is not None else DEFAULT_MEMORY_BYTES
    for c in spec.init_containers:
        rc, rm = _cpu(c.resources.requests) or 0, _mem(c.resources.requests) or 0
        cpu, mem = max(cpu, rc), max(mem, rm)
        nz_cpu, nz_mem = max(nz_cpu, rc), max(nz_mem, rm)
    return cpu, mem, nz_cpu, nz_mem


def node_allocatable(node: node_pb2.Node) -> tuple[int, int, int]:
    """(cpu millis, memory bytes, max pods) from status.allocatable, falling back to capacity."""
    alloc = node.status.allocatable if node.status.allocatable else node.status.capacity
    cpu = _cpu(alloc) or 0
    mem = _mem(alloc) or 0
    pods_q = alloc.get("pods")
    pods = DEFAULT_MAX_PODS
    if pods_q is not None:
        try:
            pods = int(pods_q.value)
        except ValueError:
            pods = DEFAULT_MAX_PODS
    return cpu, mem, pods


def pod_is_terminal(pod: pod_pb2.Pod) -> bool:
    return pod.status.phase in ("Succeeded", "Failed")
