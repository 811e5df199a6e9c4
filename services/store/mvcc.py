"""The state machine: a revisioned key-value store on SQLite with an event history for watches.

One global revision; every key keeps create_revision, mod_revision and version. Each applied
write appends events (revision, type, key, value, prev_value) to `history`, which is compacted
by revision count (deterministically, inside apply) or by an explicit Compact command. The raft
applied index is stored in the same transaction as the data, so a restart resumes exactly.

Writes go through `apply_batch` (one SQLite transaction and one fsync per batch, on whatever
thread the replicator applies on); reads use one read-only connection per thread (WAL lets them
run alongside the writer).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from pinnace.common import logging
from services.store import encoding as enc
from services.store.walcheckpoint import WalCheckpointer, hand_over_checkpoints

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL,
  create_revision INTEGER NOT NULL,
  mod_revision INTEGER NOT NULL,
  version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
  seq INTEGER PRIMARY KEY,  -- revision << 8 | position of the op in its transaction
  type INTEGER NOT NULL,
  key TEXT NOT NULL,
  value BLOB,
  prev_value BLOB
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
"""

log = logging.get_logger("store.mvcc")
REGISTRY_PREFIX = "/registry/"
DEFAULT_HISTORY_WINDOW = 50_000
# A range limit above this asks for everything anyway; SQLite integers stop at 2**63 - 1 and the
# query asks for limit + 1 rows.
_MAX_SQL_LIMIT = 2**62


class Event(NamedTuple):
    """One change: ADDED/MODIFIED carry the new value, DELETED only prev (the last state)."""

    revision: int
    type: int
    key: str
    value: bytes | None
    prev: bytes | None


# (mod_revision, create_revision, version, value) of a key inside apply_batch
_Row = tuple[int, int, int, bytes]


class KeyValue(NamedTuple):
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int


class Compacted(Exception):
    """The requested revision is older than the compaction point."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"revision has been compacted (oldest available: {compact_revision})")
        self.compact_revision = compact_revision


class FutureRevision(Exception):
    """The requested revision is newer than this replica's state."""


def prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with prefix (prefix ends in '/')."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA cache_size=-16384")
    return conn


def _decode_txn(data: bytes, keys: set[str]) -> enc.Txn | bytes:
    """The txn of a command, its keys added to `keys`; an error result when it is malformed (a
    malformed command must not wedge the replica)."""
    try:
        txn = enc.decode_txn(data)
    except Exception as e:
        return enc.result_error(f"malformed txn: {e}")
    keys.update(cmp.key for cmp in txn.compares)
    keys.update(op.key for op in txn.ops)
    return txn


class MVCCStore:
    """The store's state machine (implements replication.StateMachine)."""

    def __init__(self, data_dir: str, history_window: int = DEFAULT_HISTORY_WINDOW) -> None:
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "state.db")
        self.history_window = history_window
        self._w = _connect(self.path)
        self._w.executescript(SCHEMA)
        hand_over_checkpoints(self._w)
        self._checkpointer = WalCheckpointer(self.path, name="state-checkpoint")
        self._lock = threading.RLock()
        self._local = threading.local()
        self._generation = 0
        self.listeners: list[Callable[[list[Event]], None]] = []
        self.reset_listeners: list[Callable[[], None]] = []
        self._load_meta()

    # ------------------------------------------------------------------ meta

    def _load_meta(self) -> None:
        rows = dict(self._w.execute("SELECT name, value FROM meta").fetchall())
        self._rev: int = int(rows.get("revision", 0))
        self._compact: int = int(rows.get("compact", 0))
        self._applied: int = int(rows.get("applied", 0))

    def revision(self) -> int:
        return self._rev

    def compact_revision(self) -> int:
        return self._compact

    def applied_index(self) -> int:
        return self._applied

    def db_size(self) -> int:
        try:
            return sum(os.path.getsize(self.path + s) for s in ("", "-wal") if os.path.exists(self.path + s))
        except OSError:
            return 0

    def set_durable(self, durable: bool) -> None:
        """synchronous=FULL (default) or NORMAL for apply commits.

        NORMAL is safe only behind a durable log that replays entries after applied_index() (raft):
        a crash may then lose the newest applies, never corrupt the file, and applied_index() rolls
        back with them. Without such a log (LocalReplicator) keep FULL.
        """
        with self._lock:
            self._w.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")

    def close(self) -> None:
        self._checkpointer.stop()
        with self._lock:
            self._w.close()
            self._generation += 1

    # ------------------------------------------------------------------ apply

    def apply_batch(self, entries: list[tuple[int, bytes]]) -> list[bytes]:
        """Apply committed entries in index order: one transaction, one fsync, a handful of statements.

        All keys the batch touches are read at once, the transactions run against that in-memory
        view, and the resulting rows are written with executemany.
        """
        results: list[bytes] = []
        events: list[Event] = []
        with self._lock:
            c = self._w
            rev = self._rev
            compact = self._compact
            applied = self._applied
            txns: list[tuple[int, enc.Txn | bytes | list[enc.Txn | bytes]]] = []
            keys: set[str] = set()
            for index, data in entries:
                if index <= applied:
                    txns.append((index, b""))
                elif data and data[0] == enc.CMD_TXN:
                    txns.append((index, _decode_txn(data, keys)))
                elif data and data[0] == enc.CMD_MULTI:
                    try:
                        txns.append((index, [_decode_txn(sub, keys) for sub in enc.decode_multi(data)]))
                    except ValueError as e:
                        txns.append((index, enc.result_error(f"malformed multi command: {e}")))
                else:
                    txns.append((index, data))
            c.execute("BEGIN IMMEDIATE")
            try:
                state = self._load_keys(c, keys)
                dirty: set[str] = set()
                history: list[tuple[int, int, str, bytes | None, bytes | None]] = []
                for index, item in txns:
                    if index <= applied:
                        results.append(enc.result_error("already applied"))
                        continue
                    applied = index
                    if isinstance(item, enc.Txn):
                        res, rev = self._apply_txn(item, rev, state, dirty, history, events)
                        results.append(res)
                    elif isinstance(item, list):
                        subs: list[bytes] = []
                        for sub in item:
                            if isinstance(sub, enc.Txn):
                                res, rev = self._apply_txn(sub, rev, state, dirty, history, events)
                                subs.append(res)
                            else:
                                subs.append(sub)
                        results.append(enc.result_multi(subs))
                    elif not item:
                        results.append(enc.result_ok(rev))
                    elif item[0] == enc.RES_ERROR:
                        results.append(item)
                    elif item[0] == enc.CMD_COMPACT:
                        target = min(enc.decode_compact(item), rev)
                        compact = max(compact, target)
                        results.append(enc.result_compacted(compact))
                    elif item[0] == enc.CMD_NOOP:
                        results.append(enc.result_ok(rev))
                    else:
                        results.append(enc.result_error(f"unknown command {item[0]}"))
                order = sorted(dirty)  # same statement order on every replica
                puts = [(k, *row) for k in order if (row := state[k]) is not None]
                gone = [(k,) for k in order if state[k] is None]
                if gone:
                    c.executemany("DELETE FROM kv WHERE key = ?", gone)
                if puts:
                    c.executemany(
                        "INSERT OR REPLACE INTO kv (key, mod_revision, create_revision, version, value) "
                        "VALUES (?, ?, ?, ?, ?)",
                        puts,
                    )
                if history:
                    c.executemany("INSERT INTO history VALUES (?, ?, ?, ?, ?)", history)
                window = self.history_window
                if window > 0 and rev - compact > window + max(1, min(window // 10, 500)):  # small, frequent deletes
                    compact = rev - window
                if compact > self._compact:
                    c.execute("DELETE FROM history WHERE seq < ?", ((compact + 1) << 8,))
                c.executemany(
                    "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                    (("revision", rev), ("compact", compact), ("applied", applied)),
                )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            self._rev, self._compact, self._applied = rev, compact, applied
            if events:
                for listener in self.listeners:
                    try:
                        listener(events)
                    except Exception:  # committed already: a listener must not fail the batch
                        log.exception("event listener failed")
        return results

    @staticmethod
    def _load_keys(c: sqlite3.Connection, keys: set[str]) -> dict[str, _Row | None]:
        state: dict[str, _Row | None] = dict.fromkeys(keys)
        ks = list(keys)
        for i in range(0, len(ks), 500):
            part = ks[i : i + 500]
            marks = ",".join("?" * len(part))
            for row in c.execute(
                f"SELECT key, mod_revision, create_revision, version, value FROM kv WHERE key IN ({marks})", part
            ):
                state[row[0]] = (row[1], row[2], row[3], row[4])
        return state

    @staticmethod
    def _apply_txn(
        txn: enc.Txn,
        rev: int,
        state: dict[str, _Row | None],
        dirty: set[str],
        history: list[tuple[int, int, str, bytes | None, bytes | None]],
        events: list[Event],
    ) -> tuple[bytes, int]:
        for i, cmp in enumerate(txn.compares):
            row = state[cmp.key]
            actual = row[0] if row is not None else 0
            if cmp.kind == enc.CMP_NOT_EXISTS:
                ok = actual == 0
            elif cmp.kind == enc.CMP_EXISTS:
                ok = actual != 0
            else:
                ok = actual == cmp.revision
            if not ok:
                return enc.result_failed(i, actual), rev
        rev += 1
        for sub, op in enumerate(txn.ops):
            row = state[op.key]
            prev = row[3] if row is not None else None
            if op.kind == enc.OP_PUT:
                value = enc.with_rv(op.value, rev) if op.key.startswith(REGISTRY_PREFIX) else op.value
                if row is None:
                    state[op.key] = (rev, rev, 1, value)
                    etype = enc.ADDED
                else:
                    state[op.key] = (rev, row[1], row[2] + 1, value)
                    etype = enc.MODIFIED
                dirty.add(op.key)
                history.append(((rev << 8) | sub, etype, op.key, value, prev))
                events.append(Event(rev, etype, op.key, value, prev))
            elif op.kind == enc.OP_DELETE and row is not None:
                state[op.key] = None
                dirty.add(op.key)
                history.append(((rev << 8) | sub, enc.DELETED, op.key, None, prev))
                events.append(Event(rev, enc.DELETED, op.key, None, prev))
        return enc.result_ok(rev), rev

    # ------------------------------------------------------------------ snapshots

    def pin_snapshot(self) -> Callable[[str], None]:
        """Pin the current state and return a function that copies exactly that state (data,
        history, applied index) into a file.

        The pin is a read transaction on a connection of its own (WAL keeps its pages while applies
        go on), so the copy may run on any thread without holding up apply_batch. The function
        must be called once: it ends the read transaction.
        """
        with self._lock:  # between two applies
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            try:
                conn.execute("BEGIN")
                conn.execute("SELECT value FROM meta WHERE name = 'applied'").fetchone()  # the read starts here
            except BaseException:
                conn.close()
                raise

        def copy(path: str) -> None:
            try:
                dest = sqlite3.connect(path)
                try:
                    conn.backup(dest)
                finally:
                    dest.close()
            finally:
                conn.close()

        return copy

    def restore(self, path: str) -> None:
        """Replace the whole state with a snapshot file; watchers are reset (they resume or relist)."""
        src = sqlite3.connect(path)
        try:
            with self._lock:
                src.backup(self._w)
                self._w.executescript(SCHEMA)
                self._load_meta()
                self._generation += 1
                for listener in self.reset_listeners:
                    listener()
        finally:
            src.close()

    # ------------------------------------------------------------------ reads

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "gen", -1) != self._generation:
            if conn is not None:
                conn.close()
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._local.conn = conn
            self._local.gen = self._generation
        return conn

    def get(self, key: str) -> KeyValue | None:
        row = (
            self._reader()
            .execute("SELECT key, value, create_revision, mod_revision, version FROM kv WHERE key = ?", (key,))
            .fetchone()
        )
        return KeyValue(*row) if row else None

    def get_value(self, key: str) -> bytes | None:
        row = self._reader().execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def keys_with_prefix(self, prefix: str) -> list[tuple[str, bytes]]:
        rows = (
            self._reader()
            .execute("SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key", (prefix, prefix_end(prefix)))
            .fetchall()
        )
        return [(r[0], r[1]) for r in rows]

    def range(
        self, start: str, end: str, limit: int = 0, revision: int = 0, values_only: bool = False
    ) -> tuple[list[Any], int, bool]:
        """Keys in [start, end) at `revision` (0 = latest), up to limit (0 = all).

        Returns (rows, revision served, more); rows are (key, value) tuples, or plain values with
        values_only. Raises Compacted / FutureRevision.
        """
        limit = min(limit, _MAX_SQL_LIMIT)
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            meta = dict(conn.execute("SELECT name, value FROM meta WHERE name IN ('revision', 'compact')").fetchall())
            current = int(meta.get("revision", 0))
            compact = int(meta.get("compact", 0))
            rows: list[Any]
            if revision <= 0 or revision == current:
                revision = current
                cols = "value" if values_only else "key, value"
                sql = f"SELECT {cols} FROM kv WHERE key >= ? AND key < ? ORDER BY key"
                args: tuple[object, ...] = (start, end)
                if limit > 0:
                    sql += " LIMIT ?"
                    args += (limit + 1,)
                rows = conn.execute(sql, args).fetchall()
                if values_only:
                    rows = [r[0] for r in rows]
            else:
                if revision > current:
                    raise FutureRevision(f"revision {revision} is in the future (current {current})")
                if revision < compact:
                    raise Compacted(compact)
                rows = self._range_at(conn, start, end, limit, revision)
                if values_only:
                    rows = [r[1] for r in rows]
        finally:
            conn.execute("COMMIT")
        more = limit > 0 and len(rows) > limit
        if more:
            rows = rows[:limit]
        return rows, revision, more

    @staticmethod
    def _range_at(conn: sqlite3.Connection, start: str, end: str, limit: int, revision: int) -> list[tuple[str, bytes]]:
        lim = f" LIMIT {int(limit) + 1}" if limit > 0 else ""
        cur = conn.execute(
            "SELECT key, value FROM kv WHERE key >= ? AND key < ? AND mod_revision <= ? ORDER BY key" + lim,
            (start, end, revision),
        ).fetchall()
        old = conn.execute(
            "SELECT key, prev_value FROM (SELECT key, prev_value, ROW_NUMBER() OVER "
            "(PARTITION BY key ORDER BY seq) AS rn FROM history "
            "WHERE seq > ? AND key >= ? AND key < ?) WHERE rn = 1 AND prev_value IS NOT NULL ORDER BY key" + lim,
            (((revision + 1) << 8) - 1, start, end),
        ).fetchall()
        rows = sorted([(r[0], r[1]) for r in cur] + [(r[0], r[1]) for r in old])
        return rows[: limit + 1] if limit > 0 else rows

    def count(self, start: str, end: str) -> int:
        row = self._reader().execute("SELECT count(*) FROM kv WHERE key >= ? AND key < ?", (start, end)).fetchone()
        return int(row[0])

    def history(self, after: int, start: str, end: str, limit: int = 1000) -> list[Event]:
        """Events with revision > after for keys in [start, end), oldest first; raises Compacted."""
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            crow = conn.execute("SELECT value FROM meta WHERE name = 'compact'").fetchone()
            compact = int(crow[0]) if crow else 0
            if after < compact:
                raise Compacted(compact)
            rows = conn.execute(
                "SELECT seq, type, key, value, prev_value FROM history "
                "WHERE seq > ? AND key >= ? AND key < ? ORDER BY seq LIMIT ?",
                (((after + 1) << 8) - 1, start, end, limit),
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        events = [Event(int(r[0]) >> 8, int(r[1]), r[2], r[3], r[4]) for r in rows]
        if len(events) == limit and events[0].revision != events[-1].revision:
            last = events[-1].revision  # never split one revision's events across pages
            while events[-1].revision == last:
                events.pop()
        return events
