"""PodTopologySpread: maxSkew per topology domain (DoNotSchedule filters, ScheduleAnyway scores)."""

from __future__ import annotations

import numpy as np

from pinnace.api import pod_pb2
from services.scheduler.cache import BoolArray, FloatArray, IntArray
from services.scheduler.framework import Cycle, FilterPlugin, ScorePlugin
from services.scheduler.plugins.nodeaffinity import required_mask
from services.scheduler.plugins.topology import count_per_row, domains, per_domain, selector_of


def _constraint_state(cycle: Cycle, c: pod_pb2.TopologySpreadConstraint) -> tuple[FloatArray, float, BoolArray]:
    """(matching pods in each row's domain, the minimum over eligible domains, rows having the key)."""
    n = cycle.n
    cache = cycle.cache
    sel = selector_of(c.label_selector)
    counts = per_domain(cache, n, c.topology_key, count_per_row(cache, n, [cycle.pod.metadata.namespace], sel))
    has_key = (domains(cache, c.topology_key)[:n] >= 0) & cache.valid[:n]
    eligible = has_key.copy()
    req = required_mask(cycle)
    if req is not None:
        eligible &= req
    low = float(counts[eligible].min()) if eligible.any() else 0.0
    return counts, low, has_key


class PodTopologySpread(FilterPlugin, ScorePlugin):
    name = "PodTopologySpread"
    weight = 2

    def _hard(self, cycle: Cycle) -> BoolArray:
        def compute() -> BoolArray:
            ok = np.ones(cycle.n, dtype=bool)
            for c in cycle.pod.spec.topology_spread_constraints:
                if c.when_unsatisfiable not in ("", "DoNotSchedule"):
                    continue
                counts, low, has_key = _constraint_state(cycle, c)
                sel = selector_of(c.label_selector)
                self_match = 1.0 if sel is not None and sel.matches(cycle.pod.metadata.labels) else 0.0
                skew = max(c.max_skew, 1)
                ok &= has_key & (counts + self_match - low <= skew)
            return ok

        result: BoolArray = cycle.memo("spread", compute)
        return result

    def filter(self, cycle: Cycle) -> BoolArray | None:
        if not cycle.pod.spec.topology_spread_constraints:
            return None
        return self._hard(cycle)

    def reasons(self, cycle: Cycle, i: int) -> list[str]:
        return ["node(s) didn't match pod topology spread constraints"]

    def score(self, cycle: Cycle, rows: IntArray) -> FloatArray | None:
        soft = [c for c in cycle.pod.spec.topology_spread_constraints if c.when_unsatisfiable == "ScheduleAnyway"]
        if not soft:
            return None
        raw = np.zeros(rows.size)
        for c in soft:
            counts, _low, _has = _constraint_state(cycle, c)
            raw += counts[rows]
        hi = float(raw.max())
        if hi <= 0:
            return None
        out: FloatArray = (hi - raw) * (100.0 / hi)
        return out
