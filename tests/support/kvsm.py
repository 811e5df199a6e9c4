"""A tiny durable key-value state machine (SQLite) for raft tests.

Commands (UTF-8): "put <k> <v>", "cas <k> <old> <new>" (old "-" = absent), "get <k>".
Results: the value after the command ("" when absent), or "fail <current>" for a failed CAS.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable


class KVStateMachine:
    def __init__(self, data_dir: str) -> None:
        os.makedirs(data_dir, exist_ok=True)
        self.path = os.path.join(data_dir, "kv.db")
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._init()
        self._lock = threading.Lock()

    def _init(self) -> None:
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (id INTEGER PRIMARY KEY, applied INTEGER)")
        self._db.execute("INSERT OR IGNORE INTO meta VALUES (1, 0)")
        self.log: list[tuple[int, str]] = []

    def applied_index(self) -> int:
        return int(self._db.execute("SELECT applied FROM meta").fetchone()[0])

    def get(self, k: str) -> str:
        row = self._db.execute("SELECT v FROM kv WHERE k = ?", (k,)).fetchone()
        return row[0] if row else ""

    def apply_batch(self, entries: list[tuple[int, bytes]]) -> list[bytes]:
        out: list[bytes] = []
        with self._lock:
            db = self._db
            db.execute("BEGIN")
            applied = self.applied_index()
            for index, data in entries:
                assert index == applied + 1, f"apply {index} after {applied}"
                applied = index
                parts = data.decode().split(" ") if data else []
                if not parts:
                    out.append(b"")
                    continue
                if parts[0] == "put":
                    db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (parts[1], parts[2]))
                    out.append(parts[2].encode())
                elif parts[0] == "cas":
                    cur = self.get(parts[1])
                    want = "" if parts[2] == "-" else parts[2]
                    if cur == want:
                        db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (parts[1], parts[3]))
                        out.append(parts[3].encode())
                    else:
                        out.append(f"fail {cur}".encode())
                else:
                    out.append(self.get(parts[1]).encode())
                self.log.append((index, data.decode()))
            db.execute("UPDATE meta SET applied = ?", (applied,))
            db.execute("COMMIT")
        return out

    def pin_snapshot(self) -> Callable[[str], None]:
        """Copies the state now (into memory), writes that copy later."""
        with self._lock:
            pinned = sqlite3.connect(":memory:", check_same_thread=False)
            self._db.backup(pinned)

        def copy(path: str) -> None:
            dest = sqlite3.connect(path)
            try:
                pinned.backup(dest)
            finally:
                dest.close()
                pinned.close()

        return copy

    def restore(self, path: str) -> None:
        with self._lock:
            src = sqlite3.connect(path)
            src.backup(self._db)
            src.close()
