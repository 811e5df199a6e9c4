"""The WAL checkpointer on real SQLite files: commits never checkpoint, the thread does."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from services.store import encoding as enc
from services.store.mvcc import MVCCStore
from services.store.walcheckpoint import WalCheckpointer, hand_over_checkpoints


def _put(i: int) -> bytes:
    return enc.encode_txn(enc.Txn([], [enc.Op(enc.OP_PUT, f"/registry/pods/ns/p{i}", os.urandom(1024))]))


def _wait(cond: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_writer_commits_leave_checkpoints_to_the_thread(tmp_path: Path) -> None:
    store = MVCCStore(str(tmp_path))
    try:
        assert store._w.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        store._checkpointer.stop()  # first show that commits alone never copy pages back
        main_file = Path(store.path)
        before = main_file.stat().st_size
        index = 0
        for _ in range(40):  # ~2,500 WAL pages: past the automatic threshold of 1,000
            store.apply_batch([(index + j + 1, _put(index + j)) for j in range(32)])
            index += 32
        assert main_file.stat().st_size == before
        assert os.path.getsize(store.path + "-wal") > 1000 * 4096

        checkpointer = WalCheckpointer(store.path, interval=0.05)
        try:
            assert _wait(lambda: main_file.stat().st_size > before + 1000 * 1024)
        finally:
            checkpointer.stop()
        assert not checkpointer._thread.is_alive()
        assert store.get(f"/registry/pods/ns/p{index - 1}") is not None
    finally:
        store.close()
    assert not store._checkpointer._thread.is_alive()


def test_checkpointer_never_creates_a_removed_database(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    hand_over_checkpoints(conn)
    conn.execute("CREATE TABLE t (v)")
    conn.close()
    checkpointer = WalCheckpointer(str(path), interval=0.02)
    try:
        path.unlink()
        assert _wait(lambda: not checkpointer._thread.is_alive(), 5.0)
        assert not path.exists()
    finally:
        checkpointer.stop()
