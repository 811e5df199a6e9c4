"""TaintToleration: NoSchedule/NoExecute taints filter, PreferNoSchedule taints lower the score."""

from __future__ import annotations

import numpy as np

from pinnace.api import node_pb2, pod_pb2
from pinnace.common.tolerations import untolerated
from services.scheduler.cache import BoolArray, FloatArray, IntArray
from services.scheduler.framework import Cycle, FilterPlugin, ScorePlugin, normalize


def taint_text(t: node_pb2.Taint) -> str:
    return f"{{{t.key}: {t.value}}}"


def _tol_key(pod: pod_pb2.Pod) -> bytes:
    if not pod.spec.tolerations:
        return b""
    return b"".join(t.SerializeToString(deterministic=True) + b"\x00" for t in pod.spec.tolerations)


class TaintToleration(FilterPlugin, ScorePlugin):
    name = "TaintToleration"
    weight = 3
    HARD = ("NoSchedule", "NoExecute")

    def filter(self, cycle: Cycle) -> BoolArray | None:
        cache = cycle.cache
        tols = list(cycle.pod.spec.tolerations)

        def compute() -> BoolArray:
            out = np.ones(cache.capacity, dtype=bool)
            for i in np.flatnonzero(cache.valid).tolist():
                if cache.taints[i] and untolerated(cache.taints[i], tols, self.HARD):
                    out[i] = False
            return out

        mask: BoolArray = cache.cached(("taints", _tol_key(cycle.pod)), compute)
        return mask[: cycle.n]

    def reasons(self, cycle: Cycle, i: int) -> list[str]:
        bad = untolerated(cycle.cache.taints[i], cycle.pod.spec.tolerations, self.HARD)
        return [f"node(s) had untolerated taint {taint_text(bad[0])}"] if bad else []

    def score(self, cycle: Cycle, rows: IntArray) -> FloatArray | None:
        cache = cycle.cache
        tols = list(cycle.pod.spec.tolerations)

        def compute() -> FloatArray:
            out = np.zeros(cache.capacity)
            for i in np.flatnonzero(cache.valid).tolist():
                if cache.taints[i]:
                    out[i] = len(untolerated(cache.taints[i], tols, ("PreferNoSchedule",)))
            return out

        counts: FloatArray = cache.cached(("prefer-taints", _tol_key(cycle.pod)), compute)
        raw = cycle.pick(counts[: cycle.n], rows)
        if not raw.any():
            return None
        return normalize(raw, reverse=True)
