"""The scheduler's cache: node state in numpy arrays (one row per node) plus the pods each node holds.

Rows are stable: a deleted node frees its row for the next node. Pods that name a node the cache does
not know yet are parked and counted as soon as the node arrives. "Assumed" pods (decided, bind in
flight) are counted like bound ones so the next decision already sees them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pinnace.api import node_pb2, pod_pb2
from pinnace.common.selectors import Selector, SelectorError, from_label_selector
from services.scheduler.resources import node_allocatable, pod_is_terminal, pod_requests

HOSTNAME_KEY = "kubernetes.io/hostname"
CPU, MEM, PODS = 0, 1, 2

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass
class PodEntry:
    """What the cache keeps about a pod counted on a node."""

    key: str
    namespace: str
    labels: dict[str, str]
    node: str
    req: tuple[int, int]
    nz: tuple[int, int]
    anti_affinity: list[pod_pb2.PodAffinityTerm] = field(default_factory=list)


@dataclass
class AntiTerm:
    """One distinct required anti-affinity term of counted pods, with the nodes those pods sit on."""

    selector: Selector | None
    topology_key: str
    namespaces: tuple[str, ...]
    nodes: Counter[str] = field(default_factory=Counter)


def _anti_sig(term: pod_pb2.PodAffinityTerm, namespace: str) -> bytes:
    return term.SerializeToString(deterministic=True) + b"\x00" + namespace.encode()


def pod_key(pod: pod_pb2.Pod) -> str:
    return f"{pod.metadata.namespace}/{pod.metadata.name}"


def entry_of(pod: pod_pb2.Pod, node: str | None = None) -> PodEntry:
    cpu, mem, nzc, nzm = pod_requests(pod.spec)
    anti = list(pod.spec.affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution)
    return PodEntry(
        key=pod_key(pod),
        namespace=pod.metadata.namespace,
        labels=dict(pod.metadata.labels),
        node=node or pod.spec.node_name,
        req=(cpu, mem),
        nz=(nzc, nzm),
        anti_affinity=anti,
    )


class NodeCache:
    """Nodes as array rows and the pods counted against them."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = 0
        self.names: list[str | None] = []
        self.index: dict[str, int] = {}
        self.nodes: list[node_pb2.Node | None] = []
        self.labels: list[dict[str, str]] = []
        self.taints: list[tuple[node_pb2.Taint, ...]] = []
        self.valid: BoolArray = np.zeros(0, dtype=bool)
        self.unschedulable: BoolArray = np.zeros(0, dtype=bool)
        # resource-major layout ([CPU], [MEM], [PODS] rows are contiguous vectors over nodes)
        self.alloc: IntArray = np.zeros((3, 0), dtype=np.int64)
        self.used: IntArray = np.zeros((3, 0), dtype=np.int64)
        self.used_nz: FloatArray = np.zeros((2, 0), dtype=np.float64)
        self.alloc_f: FloatArray = np.ones((2, 0), dtype=np.float64)  # cpu/mem allocatable, at least 1
        self.pods_on: list[dict[str, PodEntry]] = []
        self.free: list[int] = []
        self.high = 0
        self._grow(capacity)
        self.pods: dict[str, PodEntry] = {}  # counted pods by key (bound or assumed)
        self.by_ns: dict[str, dict[str, PodEntry]] = {}
        self.parked: dict[str, dict[str, PodEntry]] = {}  # node name -> pods for a node not yet seen
        self.anti_pods: dict[str, PodEntry] = {}  # counted pods with required anti-affinity terms
        self.anti_terms: dict[bytes, AntiTerm] = {}  # their distinct terms, with node counts
        # namespace -> (label key, value) -> keys of counted pods carrying it (for affinity and spread)
        self.label_index: dict[str, dict[tuple[str, str], set[str]]] = {}
        self.assumed: set[str] = set()
        self.version = 0  # bumps when labels, taints or the node set change (invalidates cached masks)
        self._mask_cache: dict[Any, Any] = {}

    # ---- rows -------------------------------------------------------------------------------------
    def _grow(self, capacity: int) -> None:
        extra = capacity - self.capacity
        if extra <= 0:
            return
        self.names.extend([None] * extra)
        self.nodes.extend([None] * extra)
        self.labels.extend({} for _ in range(extra))
        self.taints.extend(() for _ in range(extra))
        self.pods_on.extend({} for _ in range(extra))
        self.valid = np.concatenate([self.valid, np.zeros(extra, dtype=bool)])
        self.unschedulable = np.concatenate([self.unschedulable, np.zeros(extra, dtype=bool)])
        self.alloc = np.concatenate([self.alloc, np.zeros((3, extra), dtype=np.int64)], axis=1)
        self.used = np.concatenate([self.used, np.zeros((3, extra), dtype=np.int64)], axis=1)
        self.used_nz = np.concatenate([self.used_nz, np.zeros((2, extra), dtype=np.float64)], axis=1)
        self.alloc_f = np.concatenate([self.alloc_f, np.ones((2, extra), dtype=np.float64)], axis=1)
        self.capacity = capacity

    @property
    def size(self) -> int:
        """Rows in use (valid or freed); arrays are sliced to this length for decisions."""
        return self.high

    def node_count(self) -> int:
        return len(self.index)

    def name(self, i: int) -> str:
        n = self.names[i]
        return n if n is not None else ""

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        """Memoize a value that depends only on node labels/taints (cleared when they change)."""
        hit = self._mask_cache.get(key)
        if hit is None or hit[0] != self.version:
            hit = (self.version, compute())
            self._mask_cache[key] = hit
        return hit[1]

    def upsert_node(self, node: node_pb2.Node) -> None:
        name = node.metadata.name
        i = self.index.get(name)
        if i is None:
            if self.free:
                i = self.free.pop()
            else:
                if self.high >= self.capacity:
                    self._grow(max(64, self.capacity * 2))
                i = self.high
                self.high += 1
            self.index[name] = i
            self.names[i] = name
            self.valid[i] = True
            self.used[:, i] = 0
            self.used_nz[:, i] = 0
            self.pods_on[i] = {}
            self.version += 1
            for entry in self.parked.pop(name, {}).values():
                self._count(i, entry, +1)
                self.pods_on[i][entry.key] = entry
        labels = dict(node.metadata.labels)
        labels.setdefault(HOSTNAME_KEY, name)
        taints = tuple(node.spec.taints)
        if labels != self.labels[i] or taints != self.taints[i]:
            self.version += 1
        self.labels[i] = labels
        self.taints[i] = taints
        self.nodes[i] = node
        self.unschedulable[i] = node.spec.unschedulable
        self.alloc[:, i] = node_allocatable(node)
        self.alloc_f[:, i] = np.maximum(self.alloc[:2, i], 1)

    def remove_node(self, name: str) -> None:
        i = self.index.pop(name, None)
        if i is None:
            return
        # pods still naming this node stay parked, in case the node comes back
        if self.pods_on[i]:
            self.parked[name] = dict(self.pods_on[i])
        self.pods_on[i] = {}
        self.names[i] = None
        self.nodes[i] = None
        self.labels[i] = {}
        self.taints[i] = ()
        self.valid[i] = False
        self.unschedulable[i] = False
        self.alloc[:, i] = 0
        self.alloc_f[:, i] = 1
        self.used[:, i] = 0
        self.used_nz[:, i] = 0
        self.free.append(i)
        self.version += 1

    # ---- pods -------------------------------------------------------------------------------------
    def _count(self, i: int, e: PodEntry, sign: int) -> None:
        self.used[CPU, i] += sign * e.req[0]
        self.used[MEM, i] += sign * e.req[1]
        self.used[PODS, i] += sign
        self.used_nz[CPU, i] += sign * e.nz[0]
        self.used_nz[MEM, i] += sign * e.nz[1]

    def add_pod(self, entry: PodEntry) -> None:
        """Count a pod on its node (replacing an earlier record of it)."""
        self.remove_pod(entry.key)
        self.pods[entry.key] = entry
        self.by_ns.setdefault(entry.namespace, {})[entry.key] = entry
        idx = self.label_index.setdefault(entry.namespace, {})
        for kv in entry.labels.items():
            idx.setdefault(kv, set()).add(entry.key)
        if entry.anti_affinity:
            self.anti_pods[entry.key] = entry
            for t in entry.anti_affinity:
                sig = _anti_sig(t, entry.namespace)
                at = self.anti_terms.get(sig)
                if at is None:
                    try:
                        sel: Selector | None = from_label_selector(t.label_selector)
                    except SelectorError:
                        sel = None
                    at = AntiTerm(sel, t.topology_key, tuple(t.namespaces) or (entry.namespace,))
                    self.anti_terms[sig] = at
                at.nodes[entry.node] += 1
        i = self.index.get(entry.node)
        if i is None:
            self.parked.setdefault(entry.node, {})[entry.key] = entry
            return
        self.pods_on[i][entry.key] = entry
        self._count(i, entry, +1)

    def remove_pod(self, key: str) -> PodEntry | None:
        entry = self.pods.pop(key, None)
        if entry is None:
            return None
        self.assumed.discard(key)
        ns = self.by_ns.get(entry.namespace)
        if ns is not None:
            ns.pop(key, None)
        idx = self.label_index.get(entry.namespace, {})
        for kv in entry.labels.items():
            bucket = idx.get(kv)
            if bucket is not None:
                bucket.discard(key)
                if not bucket:
                    del idx[kv]
        if self.anti_pods.pop(key, None) is not None:
            for t in entry.anti_affinity:
                sig = _anti_sig(t, entry.namespace)
                at = self.anti_terms.get(sig)
                if at is not None:
                    at.nodes[entry.node] -= 1
                    if at.nodes[entry.node] <= 0:
                        del at.nodes[entry.node]
                    if not at.nodes:
                        del self.anti_terms[sig]
        i = self.index.get(entry.node)
        if i is None:
            self.parked.get(entry.node, {}).pop(key, None)
            return entry
        if self.pods_on[i].pop(key, None) is not None:
            self._count(i, entry, -1)
        return entry

    def assume(self, pod: pod_pb2.Pod, node: str) -> None:
        """Count a pod on a node before its bind lands."""
        self.add_pod(entry_of(pod, node))
        self.assumed.add(pod_key(pod))

    def forget(self, key: str) -> None:
        """Undo an assume whose bind failed."""
        if key in self.assumed:
            self.remove_pod(key)

    def observe_pod(self, pod: pod_pb2.Pod) -> None:
        """Bring the cache in line with a pod seen by the informer (add, update)."""
        key = pod_key(pod)
        if not pod.spec.node_name or pod_is_terminal(pod):
            if key not in self.assumed or pod_is_terminal(pod):
                self.remove_pod(key)
            return
        self.assumed.discard(key)
        old = self.pods.get(key)
        if old is not None and old.node == pod.spec.node_name and old.labels == dict(pod.metadata.labels):
            return
        self.add_pod(entry_of(pod))

    def live_rows(self) -> IntArray:
        return np.flatnonzero(self.valid[: self.high]).astype(np.int64)

    def iter_pods(self, namespaces: Iterable[str] | None) -> Iterator[PodEntry]:
        if namespaces is None:
            yield from self.pods.values()
            return
        for ns in namespaces:
            yield from self.by_ns.get(ns, {}).values()

    def matching(self, namespaces: Iterable[str] | None, sel: Selector) -> Iterator[PodEntry]:
        """Counted pods in the namespaces (None: all) matching a selector, narrowed by the label index
        through its equality and set-membership requirements before the full match."""
        for ns in list(self.by_ns) if namespaces is None else namespaces:
            pool = self.by_ns.get(ns)
            if not pool:
                continue
            idx = self.label_index.get(ns, {})
            cand: set[str] | None = None
            for r in sel.requirements:
                if r.op == "=":
                    keys = idx.get((r.key, r.values[0]), set())
                elif r.op == "in":
                    keys = set().union(*(idx.get((r.key, v), set()) for v in r.values))
                else:
                    continue
                cand = keys if cand is None else cand & keys
                if not cand:
                    break
            entries = pool.values() if cand is None else (pool[k] for k in cand if k in pool)
            for e in entries:
                if sel.matches(e.labels):
                    yield e
