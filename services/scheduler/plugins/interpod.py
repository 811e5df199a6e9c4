"""InterPodAffinity: required pod affinity/anti-affinity (filter, including existing pods' anti-affinity
against the incoming pod) and preferred terms (score), over any topology key."""

from __future__ import annotations

import numpy as np

from pinnace.api import pod_pb2
from services.scheduler.cache import BoolArray, FloatArray, IntArray
from services.scheduler.framework import Cycle, FilterPlugin, ScorePlugin
from services.scheduler.plugins.topology import count_per_row, domains, per_domain, selector_of


def _namespaces(term: pod_pb2.PodAffinityTerm, own: str) -> list[str]:
    return list(term.namespaces) or [own]


def term_counts(cycle: Cycle, term: pod_pb2.PodAffinityTerm) -> FloatArray:
    """Per row: matching pods in the row's topology domain."""
    sel = selector_of(term.label_selector)
    per_row = count_per_row(cycle.cache, cycle.n, _namespaces(term, cycle.pod.metadata.namespace), sel)
    return per_domain(cycle.cache, cycle.n, term.topology_key, per_row)


class InterPodAffinity(FilterPlugin, ScorePlugin):
    name = "InterPodAffinity"
    weight = 2

    def _masks(self, cycle: Cycle) -> tuple[BoolArray, BoolArray, BoolArray]:
        def compute() -> tuple[BoolArray, BoolArray, BoolArray]:
            n = cycle.n
            pod = cycle.pod
            aff_ok = np.ones(n, dtype=bool)
            anti_ok = np.ones(n, dtype=bool)
            existing_ok = np.ones(n, dtype=bool)
            aff = pod.spec.affinity
            for term in aff.pod_affinity.required_during_scheduling_ignored_during_execution:
                counts = term_counts(cycle, term)
                has_key = domains(cycle.cache, term.topology_key)[:n] >= 0
                if not counts.any():
                    # the first pod of a group that selects itself may go anywhere with the key
                    sel = selector_of(term.label_selector)
                    own = pod.metadata.namespace in _namespaces(term, pod.metadata.namespace)
                    if sel is not None and own and sel.matches(pod.metadata.labels):
                        aff_ok &= has_key
                        continue
                aff_ok &= counts > 0
            for term in aff.pod_anti_affinity.required_during_scheduling_ignored_during_execution:
                anti_ok &= term_counts(cycle, term) == 0
            labels = pod.metadata.labels
            ns = pod.metadata.namespace
            for at in cycle.cache.anti_terms.values():
                if ns not in at.namespaces or at.selector is None or not at.selector.matches(labels):
                    continue
                dom = domains(cycle.cache, at.topology_key)[:n]
                rows = [i for i in (cycle.cache.index.get(name) for name in at.nodes) if i is not None and i < n]
                forbidden = np.unique(dom[rows]) if rows else np.zeros(0, dtype=np.int64)
                forbidden = forbidden[forbidden >= 0]
                if forbidden.size:
                    existing_ok &= ~np.isin(dom, forbidden)
            return aff_ok, anti_ok, existing_ok

        result: tuple[BoolArray, BoolArray, BoolArray] = cycle.memo("interpod", compute)
        return result

    def filter(self, cycle: Cycle) -> BoolArray | None:
        aff = cycle.pod.spec.affinity
        if (
            not aff.pod_affinity.required_during_scheduling_ignored_during_execution
            and not aff.pod_anti_affinity.required_during_scheduling_ignored_during_execution
            and not cycle.cache.anti_terms
        ):
            return None
        a, b, c = self._masks(cycle)
        out: BoolArray = a & b & c
        return out

    def reasons(self, cycle: Cycle, i: int) -> list[str]:
        a, b, c = self._masks(cycle)
        out = []
        if not a[i]:
            out.append("node(s) didn't match pod affinity rules")
        if not b[i]:
            out.append("node(s) didn't match pod anti-affinity rules")
        if not c[i]:
            out.append("node(s) didn't satisfy existing pods anti-affinity rules")
        return out

    def score(self, cycle: Cycle, rows: IntArray) -> FloatArray | None:
        aff = cycle.pod.spec.affinity
        pref = aff.pod_affinity.preferred_during_scheduling_ignored_during_execution
        anti = aff.pod_anti_affinity.preferred_during_scheduling_ignored_during_execution
        if not pref and not anti:
            return None
        raw = np.zeros(cycle.n)
        for w in pref:
            raw += w.weight * term_counts(cycle, w.pod_affinity_term)
        for w in anti:
            raw -= w.weight * term_counts(cycle, w.pod_affinity_term)
        vals = raw[rows]
        lo, hi = float(vals.min()), float(vals.max())
        if hi == lo:
            return None
        out: FloatArray = (vals - lo) * (100.0 / (hi - lo))
        return out
