"""The leader's view of each follower: match/next indexes and flow control.

A follower is probed one append at a time until its log position is known (PROBE), then
appends are pipelined up to `max_inflight` unacknowledged messages (REPLICATE); while it
installs a snapshot nothing else is sent (SNAPSHOT).
"""

from __future__ import annotations

import enum
from collections import deque


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Progress:
    """Replication state of one peer, as tracked by the leader."""

    __slots__ = (
        "inflights",
        "match",
        "max_inflight",
        "next",
        "pending_snapshot",
        "probe_sent",
        "recent_active",
        "state",
    )

    def __init__(self, next_index: int, max_inflight: int) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False
        self.pending_snapshot = 0
        self.recent_active = False
        self.max_inflight = max_inflight
        self.inflights: deque[int] = deque()

    def _reset(self, state: ProgressState) -> None:
        self.probe_sent = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.clear()

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, index: int) -> None:
        self._reset(ProgressState.SNAPSHOT)
        self.pending_snapshot = index

    def maybe_update(self, index: int) -> bool:
        """Record an acknowledgement up to `index`; True if match advanced."""
        updated = False
        if self.match < index:
            self.match = index
            updated = True
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        return updated

    def maybe_decr_to(self, rejected: int, hint: int) -> bool:
        """Handle a rejected append at `rejected`; False if the rejection is stale."""
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, hint + 1), self.match + 1, 1)
        self.probe_sent = False
        return True

    def sent_entries(self, last: int) -> None:
        """An append carrying entries up to `last` was sent."""
        if self.state is ProgressState.REPLICATE:
            self.next = last + 1
            self.inflights.append(last)
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True

    def free_le(self, index: int) -> None:
        while self.inflights and self.inflights[0] <= index:
            self.inflights.popleft()

    def is_paused(self) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return len(self.inflights) >= self.max_inflight
        return True

    def __repr__(self) -> str:
        return f"Progress({self.state.value} match={self.match} next={self.next} inflight={len(self.inflights)})"
