"""Latency histograms over fixed bucket bounds, and a sliding window of them for percentiles.

Probes on every node report histograms (counts per bucket); the controller merges them per
SLA into a time-bucketed window, so a percentile over the last N seconds is a sum of a few
arrays and a cumulative search (numpy).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

# Bucket upper bounds in milliseconds: fine where objectives usually are, coarse beyond.
BOUNDS_MS: tuple[float, ...] = (
    *[float(x) for x in range(1, 10)],
    *[float(x) for x in range(10, 100, 5)],
    *[float(x) for x in range(100, 1000, 20)],
    *[float(x) for x in range(1000, 5001, 250)],
    float("inf"),
)


def empty_counts() -> npt.NDArray[np.int64]:
    return np.zeros(len(BOUNDS_MS), dtype=np.int64)


def bucket_of(latency_ms: float) -> int:
    return int(np.searchsorted(np.asarray(BOUNDS_MS), latency_ms, side="left"))


@dataclass
class Slot:
    """Counts received during one second."""

    second: int
    counts: npt.NDArray[np.int64] = field(default_factory=empty_counts)
    errors: int = 0


class Window:
    """A sliding window of per-second histogram slots."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.slots: deque[Slot] = deque()

    def _slot(self, now: float) -> Slot:
        sec = int(now)
        if not self.slots or self.slots[-1].second != sec:
            self.slots.append(Slot(sec))
        return self.slots[-1]

    def add(self, counts: npt.ArrayLike, errors: int, now: float) -> None:
        slot = self._slot(now)
        slot.counts += np.asarray(counts, dtype=np.int64)
        slot.errors += errors
        self.trim(now)

    def observe(self, latency_ms: float, now: float) -> None:
        self._slot(now).counts[bucket_of(latency_ms)] += 1

    def trim(self, now: float) -> None:
        while self.slots and self.slots[0].second <= now - self.seconds:
            self.slots.popleft()

    def totals(self, now: float, since: float = 0.0) -> tuple[npt.NDArray[np.int64], int]:
        """Summed counts and errors of the slots in the window that started at or after `since`."""
        self.trim(now)
        total = empty_counts()
        errors = 0
        first = int(since) + (1 if since > int(since) else 0)
        for s in self.slots:
            if s.second >= first:
                total += s.counts
                errors += s.errors
        return total, errors

    def samples(self, now: float, since: float = 0.0) -> int:
        counts, errors = self.totals(now, since)
        return int(counts.sum()) + errors

    def percentile_ms(self, fraction: float, now: float, since: float = 0.0) -> float | None:
        """Latency at the given fraction (0.99 = p99), errors counted as slowest; None if empty.

        The answer is the upper bound of the bucket holding that rank (a conservative estimate).
        Only slots from `since` on count (the part of the window after the last change).
        """
        counts, errors = self.totals(now, since)
        n = int(counts.sum()) + errors
        if n == 0:
            return None
        rank = max(1, int(np.ceil(fraction * n - 1e-9)))
        cum = np.cumsum(counts)
        idx = int(np.searchsorted(cum, rank, side="left"))
        if idx >= len(BOUNDS_MS):
            return float("inf")
        return BOUNDS_MS[idx]

    def compliance(self, objective_ms: float, now: float, since: float = 0.0) -> float | None:
        """Share of samples at or under the objective (errors fail); None if empty."""
        counts, errors = self.totals(now, since)
        n = int(counts.sum()) + errors
        if n == 0:
            return None
        # Buckets whose upper bound is within the objective (conservative for a straddling bucket).
        within = int(counts[: int(np.searchsorted(np.asarray(BOUNDS_MS), objective_ms, side="right"))].sum())
        return within / n
