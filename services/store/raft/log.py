"""The in-memory raft log: entries after the last snapshot, the commit index, and how much of
it is durable (stable) and handed to the state machine (applied)."""

from __future__ import annotations

from services.store.raft.types import Entry, RaftError, SnapshotMeta


class RaftLog:
    """Entries `snap.index+1 .. last_index()`, all kept in memory until compaction."""

    def __init__(self, snap: SnapshotMeta, entries: list[Entry], commit: int, applied: int) -> None:
        self.snap = snap
        self.entries = list(entries)
        self.committed = max(commit, snap.index)
        self.applied = max(applied, snap.index)
        self.stable = self.last_index()
        self.pending_snapshot: SnapshotMeta | None = None
        if self.committed > self.last_index():
            raise RaftError(f"commit {commit} beyond last index {self.last_index()}")

    # positions -----------------------------------------------------------------------------
    def first_index(self) -> int:
        return self.snap.index + 1

    def last_index(self) -> int:
        return self.snap.index + len(self.entries)

    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snap.term

    def term(self, index: int) -> int | None:
        """Term of `index`, or None when it is compacted away or not in the log yet."""
        off = index - self.snap.index
        if off == 0:
            return self.snap.term
        if off < 0 or off > len(self.entries):
            return None
        return self.entries[off - 1].term

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def is_up_to_date(self, last_index: int, term: int) -> bool:
        lt = self.last_term()
        return term > lt or (term == lt and last_index >= self.last_index())

    def find_conflict_by_term(self, index: int, term: int) -> int:
        """Largest i <= index whose term is <= term (used to skip a follower back fast)."""
        index = min(index, self.last_index())
        while index > self.snap.index:
            t = self.term(index)
            if t is not None and t <= term:
                break
            index -= 1
        return index

    # reading -------------------------------------------------------------------------------
    def slice(self, lo: int, hi: int, max_bytes: int) -> list[Entry] | None:
        """Entries [lo, hi), at least one if any, at most max_bytes; None if lo is compacted."""
        if lo <= self.snap.index:
            return None
        base = self.snap.index + 1
        out: list[Entry] = []
        size = 0
        for i in range(lo - base, min(hi, self.last_index() + 1) - base):
            e = self.entries[i]
            size += e.size()
            if out and size > max_bytes:
                break
            out.append(e)
        return out

    def unstable_entries(self) -> list[Entry]:
        return self.entries[self.stable - self.snap.index :]

    def next_committed(self, max_bytes: int) -> list[Entry]:
        lo = max(self.applied + 1, self.first_index())
        if self.committed < lo:
            return []
        return self.slice(lo, self.committed + 1, max_bytes) or []

    def has_next_committed(self) -> bool:
        return self.committed > self.applied and self.pending_snapshot is None

    # writing -------------------------------------------------------------------------------
    def append(self, ents: list[Entry]) -> int:
        """Append, truncating any existing suffix that starts at ents[0].index."""
        if not ents:
            return self.last_index()
        first = ents[0].index
        if first - 1 < self.committed:
            raise RaftError(f"append at {first} would overwrite committed {self.committed}")
        keep = first - 1 - self.snap.index
        if keep < len(self.entries):
            del self.entries[keep:]
        self.entries.extend(ents)
        self.stable = min(self.stable, first - 1)
        return self.last_index()

    def maybe_append(self, index: int, log_term: int, commit: int, ents: list[Entry]) -> int | None:
        """Follower side of AppendEntries; returns the last new index, or None on mismatch."""
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(ents)
        conflict = 0
        for e in ents:
            if not self.match_term(e.index, e.term):
                conflict = e.index
                break
        if conflict:
            if conflict <= self.committed:
                raise RaftError(f"entry {conflict} conflicts with committed {self.committed}")
            self.append(ents[conflict - index - 1 :])
        self.commit_to(min(commit, last_new))
        return last_new

    def commit_to(self, commit: int) -> None:
        if commit > self.committed:
            if commit > self.last_index():
                raise RaftError(f"commit {commit} beyond last index {self.last_index()}")
            self.committed = commit

    def stable_to(self, index: int, term: int) -> None:
        if index > self.stable and self.match_term(index, term):
            self.stable = index

    def applied_to(self, index: int) -> None:
        if index > self.applied:
            self.applied = index

    def restore(self, snap: SnapshotMeta) -> None:
        """Replace the log with a snapshot received from the leader."""
        self.snap = snap
        self.entries = []
        self.committed = snap.index
        self.stable = snap.index
        self.pending_snapshot = snap

    def snapshot_installed(self, snap: SnapshotMeta) -> None:
        if self.pending_snapshot == snap:
            self.pending_snapshot = None
        self.applied = max(self.applied, snap.index)

    def compact(self, index: int, voters: tuple[int, ...]) -> SnapshotMeta:
        """Drop entries up to `index` (already applied and durable); returns the new snapshot meta."""
        if index <= self.snap.index:
            return self.snap
        if index > self.applied or index > self.stable:
            raise RaftError(f"compact {index} beyond applied {self.applied} / stable {self.stable}")
        term = self.term(index)
        assert term is not None
        del self.entries[: index - self.snap.index]
        self.snap = SnapshotMeta(index=index, term=term, voters=voters)
        return self.snap
