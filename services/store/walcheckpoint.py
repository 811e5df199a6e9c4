"""Checkpoints of a SQLite WAL database on a thread of its own.

SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages: that commit
copies the pages back into the main file and fsyncs it, which took 9–12 ms on this machine for
the 99th-percentile apply (its median is 0.5 ms). The store applies on its event loop, so every
such commit stalled all requests and watches. With a `WalCheckpointer` the writer turns the
automatic checkpoint off and this thread runs PASSIVE checkpoints instead, which never wait for
the writer or readers (a checkpoint that cannot finish is simply retried on the next round).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from urllib.request import pathname2url

from pinnace.common import logging

log = logging.get_logger("store.walcheckpoint")

# WAL files are reused from their start after a full checkpoint; beyond this size they are
# truncated then, so a burst does not keep its disk space.
JOURNAL_SIZE_LIMIT = 64 << 20


def hand_over_checkpoints(conn: sqlite3.Connection) -> None:
    """Turn off automatic checkpoints on a writer connection (a WalCheckpointer takes over)."""
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")


class WalCheckpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` on `path` every `interval` seconds until stopped."""

    def __init__(self, path: str, interval: float = 0.25, name: str = "wal-checkpoint") -> None:
        self.path = path
        self.interval = interval
        self.checkpoints = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(self.interval):
                if not os.path.exists(self.path):  # removed with its directory (an unclosed store in a test)
                    return
                try:
                    if conn is None:  # mode=rw: never create the file
                        uri = f"file:{pathname2url(self.path)}?mode=rw"
                        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=0)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error as e:  # busy: retry on the next round
                    log.debug("checkpoint skipped", path=self.path, error=str(e))
        finally:
            if conn is not None:
                conn.close()

    def stop(self) -> None:
        """Stop the thread and wait for a checkpoint in progress to end."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
