"""NodeUnschedulable (cordoned nodes) and NodeName (spec.nodeName names one node) filters."""

from __future__ import annotations

import numpy as np

from services.scheduler.cache import BoolArray
from services.scheduler.framework import Cycle, FilterPlugin

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


class NodeUnschedulable(FilterPlugin):
    """Cordoned nodes take no new pods unless the pod tolerates node.kubernetes.io/unschedulable."""

    name = "NodeUnschedulable"

    def filter(self, cycle: Cycle) -> BoolArray | None:
        unsched = cycle.cache.unschedulable[: cycle.n]
        if not unsched.any():
            return None
        for t in cycle.pod.spec.tolerations:
            if t.effect in ("", "NoSchedule") and (
                (t.operator == "Exists" and t.key in ("", UNSCHEDULABLE_TAINT))
                or (t.key == UNSCHEDULABLE_TAINT and t.operator in ("", "Equal"))
            ):
                return None
        out: BoolArray = ~unsched
        return out

    def reasons(self, cycle: Cycle, i: int) -> list[str]:
        return ["node(s) were unschedulable"]


class NodeName(FilterPlugin):
    """A pod that names a node (with schedulerName set) fits only there."""

    name = "NodeName"

    def filter(self, cycle: Cycle) -> BoolArray | None:
        want = cycle.pod.spec.node_name
        if not want:
            return None
        out = np.zeros(cycle.n, dtype=bool)
        i = cycle.cache.index.get(want)
        if i is not None:
            out[i] = True
        return out

    def reasons(self, cycle: Cycle, i: int) -> list[str]:
        return ["node(s) didn't match the requested node name"]
