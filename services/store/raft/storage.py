"""Durable raft state in SQLite (raft.db in the data dir): the log, the hard state and the
positions of the log offset and of the latest snapshot file.

Everything one Ready asks to persist goes into one transaction, so one fsync (WAL mode,
synchronous=FULL) covers many client writes (group commit).

Failpoints for robustness tests: PINNACE_RAFT_FAILPOINTS="before_fsync=sleep(0.5);after_fsync=error"
(points: FAILPOINTS, before_snapshot_copy on the driver's snapshot thread; actions: sleep(seconds),
error, crash), or `set_failpoint(name, action)`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass

from services.store.raft.types import Entry, EntryType, HardState, SnapshotMeta
from services.store.walcheckpoint import WalCheckpointer, hand_over_checkpoints

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type INTEGER NOT NULL, data BLOB);
CREATE TABLE IF NOT EXISTS state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  term INTEGER NOT NULL, vote INTEGER NOT NULL, commit_index INTEGER NOT NULL,
  offset_index INTEGER NOT NULL, offset_term INTEGER NOT NULL,
  snap_index INTEGER NOT NULL, snap_term INTEGER NOT NULL, voters TEXT NOT NULL
);
"""

FAILPOINTS = ("before_fsync", "after_fsync", "before_snapshot_copy")


class StorageError(Exception):
    """The raft log could not be made durable; the replica must stop (its memory is ahead of disk)."""


@dataclass
class StoredState:
    hard_state: HardState
    offset: SnapshotMeta
    snapshot: SnapshotMeta
    entries: list[Entry]


def _voters(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v)


class RaftStorage:
    """The raft log in SQLite. Methods are called from one thread at a time."""

    def __init__(self, data_dir: str) -> None:
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "raft.db")
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        hand_over_checkpoints(self._db)
        self._checkpointer = WalCheckpointer(self.path, name="raft-log-checkpoint")
        self._lock = threading.Lock()
        self._failpoints: dict[str, str] = {}
        for item in os.environ.get("PINNACE_RAFT_FAILPOINTS", "").split(";"):
            if "=" in item:
                name, action = item.split("=", 1)
                self.set_failpoint(name.strip(), action.strip())
        self.fsyncs = 0

    def set_failpoint(self, name: str, action: str | None) -> None:
        """Arm (or with None disarm) a failpoint: sleep(<seconds>), error, crash."""
        if name not in FAILPOINTS:
            raise ValueError(f"unknown failpoint {name!r}; known: {FAILPOINTS}")
        if action is None:
            self._failpoints.pop(name, None)
        else:
            self._failpoints[name] = action

    def failpoint(self, name: str) -> None:
        """Run the action armed at this failpoint, if any (also used by the raft driver)."""
        action = self._failpoints.get(name)
        if not action:
            return
        if action.startswith("sleep(") and action.endswith(")"):
            time.sleep(float(action[6:-1]))
        elif action == "error":
            raise StorageError(f"failpoint {name}: injected error")
        elif action == "crash":
            os._exit(97)

    def load(self, voters: tuple[int, ...]) -> StoredState:
        with self._lock:
            row = self._db.execute(
                "SELECT term, vote, commit_index, offset_index, offset_term, snap_index, snap_term, voters FROM state"
            ).fetchone()
            if row is None:
                hs, off, snap = HardState(), SnapshotMeta(voters=voters), SnapshotMeta(voters=voters)
            else:
                v = _voters(row[7]) or voters
                hs = HardState(row[0], row[1], row[2])
                off = SnapshotMeta(row[3], row[4], v)
                snap = SnapshotMeta(row[5], row[6], v)
            ents = [
                Entry(t, i, d or b"", EntryType(ty))
                for i, t, ty, d in self._db.execute(
                    "SELECT idx, term, type, data FROM entries WHERE idx > ? ORDER BY idx", (off.index,)
                )
            ]
        for k, e in enumerate(ents):
            if e.index != off.index + 1 + k:
                raise StorageError(f"raft log has a hole at {off.index + 1 + k}")
        return StoredState(hs, off, snap, ents)

    def save(
        self,
        hard_state: HardState,
        entries: list[Entry],
        snapshot: SnapshotMeta | None = None,
        offset: SnapshotMeta | None = None,
    ) -> None:
        """Persist one Ready atomically: installed snapshot, entries (truncating a conflicting
        suffix) and hard state; one COMMIT = one fsync."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                cur = self._state_row()
                if snapshot is not None:
                    db.execute("DELETE FROM entries")
                    cur.update(
                        offset_index=snapshot.index,
                        offset_term=snapshot.term,
                        snap_index=snapshot.index,
                        snap_term=snapshot.term,
                        voters=",".join(map(str, snapshot.voters)),
                    )
                if offset is not None:
                    db.execute("DELETE FROM entries WHERE idx <= ?", (offset.index,))
                    cur.update(offset_index=offset.index, offset_term=offset.term)
                if entries:
                    db.execute("DELETE FROM entries WHERE idx >= ?", (entries[0].index,))
                    db.executemany(
                        "INSERT INTO entries (idx, term, type, data) VALUES (?, ?, ?, ?)",
                        [(e.index, e.term, int(e.type), e.data) for e in entries],
                    )
                cur.update(term=hard_state.term, vote=hard_state.vote, commit_index=hard_state.commit)
                db.execute(
                    "INSERT OR REPLACE INTO state (id, term, vote, commit_index, offset_index, offset_term,"
                    " snap_index, snap_term, voters) VALUES (1, :term, :vote, :commit_index, :offset_index,"
                    " :offset_term, :snap_index, :snap_term, :voters)",
                    cur,
                )
                self.failpoint("before_fsync")
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            self.fsyncs += 1
            self.failpoint("after_fsync")

    def set_snapshot(self, snap: SnapshotMeta, offset: SnapshotMeta, hard_state: HardState) -> None:
        """Record a locally taken snapshot and compact the log up to `offset`."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._state_row()
                cur.update(
                    snap_index=snap.index,
                    snap_term=snap.term,
                    offset_index=offset.index,
                    offset_term=offset.term,
                    voters=",".join(map(str, snap.voters)),
                )
                cur.setdefault("term", hard_state.term)
                db.execute("DELETE FROM entries WHERE idx <= ?", (offset.index,))
                db.execute(
                    "INSERT OR REPLACE INTO state (id, term, vote, commit_index, offset_index, offset_term,"
                    " snap_index, snap_term, voters) VALUES (1, :term, :vote, :commit_index, :offset_index,"
                    " :offset_term, :snap_index, :snap_term, :voters)",
                    cur,
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def _state_row(self) -> dict[str, object]:
        row = self._db.execute(
            "SELECT term, vote, commit_index, offset_index, offset_term, snap_index, snap_term, voters FROM state"
        ).fetchone()
        keys = ("term", "vote", "commit_index", "offset_index", "offset_term", "snap_index", "snap_term", "voters")
        if row is None:
            return dict(zip(keys, (0, 0, 0, 0, 0, 0, 0, ""), strict=True))
        return dict(zip(keys, row, strict=True))

    def close(self) -> None:
        self._checkpointer.stop()
        with self._lock:
            self._db.close()
