"""NodeAffinity: nodeSelector and required node affinity (filter), preferred node affinity (score)."""

from __future__ import annotations

import numpy as np

from services.scheduler.cache import BoolArray, FloatArray, IntArray
from services.scheduler.framework import Cycle, FilterPlugin, ScorePlugin, normalize
from services.scheduler.plugins.nodematch import node_selector_mask, selector_mask, term_mask


def required_mask(cycle: Cycle) -> BoolArray | None:
    """Rows allowed by the pod's nodeSelector and required node affinity (None = all)."""
    spec = cycle.pod.spec
    mask: BoolArray | None = None
    if spec.node_selector:
        mask = selector_mask(cycle.cache, cycle.n, spec.node_selector)
    na = spec.affinity.node_affinity
    if na.HasField("required_during_scheduling_ignored_during_execution"):
        req = node_selector_mask(cycle.cache, cycle.n, na.required_during_scheduling_ignored_during_execution)
        mask = req if mask is None else (mask & req)
    return mask


class NodeAffinity(FilterPlugin, ScorePlugin):
    """Filters on nodeSelector + requiredDuringScheduling; scores preferredDuringScheduling weights."""

    name = "NodeAffinity"
    weight = 2

    def filter(self, cycle: Cycle) -> BoolArray | None:
        result: BoolArray | None = cycle.memo("nodeaffinity", lambda: required_mask(cycle))
        return result

    def reasons(self, cycle: Cycle, i: int) -> list[str]:
        return ["node(s) didn't match Pod's node affinity/selector"]

    def score(self, cycle: Cycle, rows: IntArray) -> FloatArray | None:
        prefs = cycle.pod.spec.affinity.node_affinity.preferred_during_scheduling_ignored_during_execution
        if not prefs:
            return None
        raw = np.zeros(rows.size)
        for p in prefs:
            if p.weight:
                raw += p.weight * term_mask(cycle.cache, cycle.n, p.preference)[rows]
        return normalize(raw)
