"""The scheduling framework: pre-filters, filters and scores run as vector operations over node rows.

A filter returns a boolean mask over the cache's rows (True = the node passes) or None when it passes
every node; reasons for failing nodes are computed only when they are needed (no node fits, or
`explain` for `pinnace why-pending`). Scores are 0..100 per feasible row, summed with weights.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from pinnace.api import pod_pb2, storage_pb2
from services.scheduler.cache import BoolArray, FloatArray, IntArray, NodeCache, pod_key
from services.scheduler.resources import pod_requests


class VolumeLister(Protocol):
    """Read access to claims, volumes and classes (informer caches in the service, dicts in tests)."""

    def get_pvc(self, namespace: str, name: str) -> storage_pb2.PersistentVolumeClaim | None: ...
    def get_pv(self, name: str) -> storage_pb2.PersistentVolume | None: ...
    def get_storage_class(self, name: str) -> storage_pb2.StorageClass | None: ...


class NoVolumes:
    """A VolumeLister that knows nothing."""

    def get_pvc(self, namespace: str, name: str) -> storage_pb2.PersistentVolumeClaim | None:
        return None

    def get_pv(self, name: str) -> storage_pb2.PersistentVolume | None:
        return None

    def get_storage_class(self, name: str) -> storage_pb2.StorageClass | None:
        return None


@dataclass
class Cycle:
    """One scheduling attempt for one pod: the pod, the cache, and a scratch pad for plugins."""

    pod: pod_pb2.Pod
    cache: NodeCache
    volumes: VolumeLister
    n: int  # rows considered (cache.size)
    req: tuple[int, int, int, int]
    scratch: dict[str, Any] = field(default_factory=dict)

    def pick(self, values: Any, rows: IntArray) -> Any:
        """values[rows], without a gather when rows are all the rows."""
        return values if rows.size == self.n else values[rows]

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self.scratch:
            self.scratch[key] = compute()
        return self.scratch[key]


class FilterPlugin:
    """Base class of filters: override `filter` and `reasons` (and `prefilter` for pod-level checks)."""

    name = "Filter"

    def prefilter(self, cycle: Cycle) -> str | None:
        """A reason that makes the pod unschedulable on every node, or None."""
        return None

    def filter(self, cycle: Cycle) -> BoolArray | None:
        return None

    def reasons(self, cycle: Cycle, i: int) -> list[str]:
        return [f"node(s) failed {self.name}"]

    def reason_counts(self, cycle: Cycle, rows: IntArray) -> Counter[str]:
        counts: Counter[str] = Counter()
        for i in rows.tolist():
            counts.update(self.reasons(cycle, i))
        return counts


class ScorePlugin:
    """Base class of scores: `score` returns 0..100 per row of `rows`, or None for "no opinion"."""

    name = "Score"
    weight = 1

    def score(self, cycle: Cycle, rows: IntArray) -> FloatArray | None:
        return None


def normalize(raw: FloatArray, reverse: bool = False) -> FloatArray:
    """Scale raw scores to 0..100 by the maximum (reverse: lower raw = higher score)."""
    top = float(raw.max()) if raw.size else 0.0
    if top <= 0:
        return np.full(raw.shape, 100.0 if reverse else 0.0)
    out = raw * (100.0 / top)
    return 100.0 - out if reverse else out


@dataclass
class Decision:
    """The outcome of one scheduling attempt."""

    pod: str
    node: str | None
    total_nodes: int
    feasible_nodes: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    pod_reason: str | None = None

    @property
    def message(self) -> str:
        return fit_error_message(self.total_nodes, self.reasons, self.pod_reason)


def fit_error_message(total: int, reasons: Counter[str], pod_reason: str | None = None) -> str:
    """kube-scheduler's FitError text: "0/5 nodes are available: 3 Insufficient cpu, 2 node(s) ..."."""
    if pod_reason:
        return f"0/{total} nodes are available: {pod_reason}."
    if total == 0:
        return "0/0 nodes are available: no nodes registered."
    parts = [f"{c} {r}" for r, c in sorted(reasons.items(), key=lambda rc: (-rc[1], rc[0]))]
    return f"0/{total} nodes are available: {', '.join(parts)}."


@dataclass
class NodeReport:
    """One node's full story for why-pending: every failed filter and every score."""

    node: str
    failed: dict[str, list[str]]
    scores: dict[str, float]
    total: float


class Framework:
    """Runs the plugins for a pod against the cache."""

    def __init__(
        self,
        cache: NodeCache,
        filters: Sequence[FilterPlugin],
        scores: Sequence[ScorePlugin],
        volumes: VolumeLister | None = None,
        seed: int | None = None,
    ) -> None:
        self.cache = cache
        self.filters = list(filters)
        self.scores = list(scores)
        self.volumes: VolumeLister = volumes or NoVolumes()
        self.rng = random.Random(seed)

    def cycle(self, pod: pod_pb2.Pod) -> Cycle:
        return Cycle(pod=pod, cache=self.cache, volumes=self.volumes, n=self.cache.size, req=pod_requests(pod.spec))

    def schedule(self, pod: pod_pb2.Pod) -> Decision:
        """Pick a node for the pod (None when none fits, with the counted reasons)."""
        cycle = self.cycle(pod)
        valid = self.cache.valid[: cycle.n]
        decision = Decision(pod=pod_key(pod), node=None, total_nodes=self.cache.node_count())
        for p in self.filters:
            reason = p.prefilter(cycle)
            if reason:
                decision.pod_reason = reason
                return decision
        feasible = valid.copy()
        for p in self.filters:
            m = p.filter(cycle)
            if m is not None:
                feasible &= m
                if not feasible.any():
                    break
        rows = np.flatnonzero(feasible)
        decision.feasible_nodes = int(rows.size)
        if rows.size == 0:
            decision.reasons = self._reasons(cycle)
            return decision
        if rows.size == 1:
            decision.node = self.cache.name(int(rows[0]))
            return decision
        total = np.zeros(rows.size)
        for s in self.scores:
            sc = s.score(cycle, rows)
            if sc is not None:
                total += s.weight * sc
        best = np.flatnonzero(total >= total.max() - 1e-9)
        pick = int(rows[int(best[self.rng.randrange(best.size)])])
        decision.node = self.cache.name(pick)
        return decision

    def _reasons(self, cycle: Cycle) -> Counter[str]:
        """Each node's reasons from the first filter it fails (as kube-scheduler reports them)."""
        remaining = self.cache.valid[: cycle.n].copy()
        counts: Counter[str] = Counter()
        for p in self.filters:
            m = p.filter(cycle)
            if m is None:
                continue
            failing = remaining & ~m
            if failing.any():
                counts.update(p.reason_counts(cycle, np.flatnonzero(failing)))
            remaining &= m
        return counts

    def explain(self, pod: pod_pb2.Pod) -> tuple[str | None, list[NodeReport]]:
        """Every node with every failed filter and every score (scores for feasible nodes only)."""
        cycle = self.cycle(pod)
        pod_reason = None
        for p in self.filters:
            pod_reason = pod_reason or p.prefilter(cycle)
        rows = np.flatnonzero(self.cache.valid[: cycle.n])
        failed: dict[int, dict[str, list[str]]] = {int(i): {} for i in rows}
        feasible = self.cache.valid[: cycle.n].copy()
        for p in self.filters:
            m = p.filter(cycle)
            if m is None:
                continue
            feasible &= m
            for i in np.flatnonzero(self.cache.valid[: cycle.n] & ~m).tolist():
                failed[i][p.name] = p.reasons(cycle, i)
        if pod_reason:
            feasible[:] = False
        ok = np.flatnonzero(feasible)
        scores: dict[int, dict[str, float]] = {int(i): {} for i in ok}
        totals: dict[int, float] = {int(i): 0.0 for i in ok}
        if ok.size:
            for s in self.scores:
                sc = s.score(cycle, ok)
                if sc is None:
                    continue
                for i, v in zip(ok.tolist(), sc.tolist(), strict=True):
                    scores[i][s.name] = float(v)
                    totals[i] += s.weight * float(v)
        reports = [NodeReport(self.cache.name(i), failed[i], scores.get(i, {}), totals.get(i, 0.0)) for i in failed]
        reports.sort(key=lambda r: (bool(r.failed), -r.total, r.node))
        return pod_reason, reports
