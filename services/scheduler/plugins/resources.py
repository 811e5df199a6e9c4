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
            cpu, mem = cycle.req[0], cycle.req[1]
            no_cpu = (c.alloc[CPU, :n] - c.used[CPU, :n] < cpu) if cpu > 0 else np.zeros(n, dtype=bool)
            no_mem = (c.alloc[MEM, :n] - c.used[MEM, :n] < mem) if mem > 0 else np.zeros(n, dtype=bool)
            no_pods = c.alloc[PODS, :n] - c.used[PODS, :n] < 1
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
        cpu = np.minimum((c.used_nz[CPU, :n] + cycle.req[2]) / c.alloc_f[CPU, :n], 1.0)
        mem = np.minimum((c.used_nz[MEM, :n] + cycle.req[3]) / c.alloc_f[MEM, :n], 1.0)
        return cpu, mem

    cpu, mem = cycle.memo("fractions", compute)
    return cycle.pick(cpu, rows), cycle.pick(mem, rows)


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
