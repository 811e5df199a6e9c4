"""NodeResourcesFit (filter), LeastAllocated and BalancedAllocation (scores): cpu, memory and pod slots."""

from __future__ import annotations

from collections import Counter

import numpy as np

from services.scheduler.cache import CPU, MEM, PODS, BoolArray, FloatArray, IntArray
from services.scheduler.framework import Cycle, FilterPlugin, ScorePlugin


class NodeResourcesFit(FilterPlugin):
    """Requests must fit in allocatable minus what counted pods already request."""

    name = "NodeResourcesFit"

    def _fails(self, cycle: Cycle) -> tuple[BoolArray, BoolArray, BoolArray]:
        def compute() -> tuple[BoolArray, BoolArray, BoolArray]:
            c = cycle.cache
            n = cycle.n
            free = c.alloc[:n] - c.used[:n]
            cpu, mem = cycle.req[0], cycle.req[1]
            no_cpu = (free[:, CPU] < cpu) if cpu > 0 else np.zeros(n, dtype=bool)
            no_mem = (free[:, MEM] < mem) if mem > 0 else np.zeros(n, dtype=bool)
            no_pods = free[:, PODS] < 1
            return no_cpu, no_mem, no_pods

        result: tuple[BoolArray, BoolArray, BoolArray] = cycle.memo("fit", compute)
        return result

    def filter(self, cycle: Cycle) -> BoolArray | None:
        no_cpu, no_mem, no_pods = self._fails(cycle)
        out: BoolArray = ~(no_cpu | no_mem | no_pods)
        return out

    def reasons(self, cycle: Cycle, i: int) -> list[str]:
        no_cpu, no_mem, no_pods = self._fails(cycle)
        out = []
        if no_pods[i]:
            out.append("Too many pods")
        if no_cpu[i]:
            out.append("Insufficient cpu")
        if no_mem[i]:
            out.append("Insufficient memory")
        return out

    def reason_counts(self, cycle: Cycle, rows: IntArray) -> Counter[str]:
        no_cpu, no_mem, no_pods = self._fails(cycle)
        counts: Counter[str] = Counter()
        for label, arr in (("Too many pods", no_pods), ("Insufficient cpu", no_cpu), ("Insufficient memory", no_mem)):
            k = int(arr[rows].sum())
            if k:
                counts[label] = k
        return counts


def _fractions(cycle: Cycle, rows: IntArray) -> tuple[FloatArray, FloatArray]:
    """Requested/allocatable for cpu and memory after placing the pod (non-zero requests), per row of
    `rows`; computed once per cycle over all rows (contiguous vector ops), then gathered."""

    def compute() -> tuple[FloatArray, FloatArray]:
        c = cycle.cache
        n = cycle.n
        alloc = np.maximum(c.alloc[:n, :2], 1).astype(np.float64)
        used = c.used_nz[:n].astype(np.float64)
        cpu = np.minimum((used[:, 0] + cycle.req[2]) / alloc[:, 0], 1.0)
        mem = np.minimum((used[:, 1] + cycle.req[3]) / alloc[:, 1], 1.0)
        return cpu, mem

    cpu, mem = cycle.memo("fractions", compute)
    return cpu[rows], mem[rows]


class LeastAllocated(ScorePlugin):
    """Prefer nodes with the most room left: mean of (1 - requested/allocatable) over cpu and memory."""

    name = "NodeResourcesLeastAllocated"
    weight = 1

    def score(self, cycle: Cycle, rows: IntArray) -> FloatArray | None:
        cpu, mem = _fractions(cycle, rows)
        out: FloatArray = (2.0 - cpu - mem) * 50.0
        return out


class BalancedAllocation(ScorePlugin):
    """Prefer nodes whose cpu and memory fractions stay close: (1 - |cpu - mem| / 2) * 100."""

    name = "NodeResourcesBalancedAllocation"
    weight = 1

    def score(self, cycle: Cycle, rows: IntArray) -> FloatArray | None:
        cpu, mem = _fractions(cycle, rows)
        out: FloatArray = (1.0 - np.abs(cpu - mem) / 2.0) * 100.0
        return out
