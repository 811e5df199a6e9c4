"""A watch hub over a real MVCC store in a temporary directory, for the hub's unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from pinnace.api.object_pb2 import Object
from services.store import encoding as enc
from services.store.mvcc import MVCCStore
from services.store.watch import WatchHub

PREFIX = "/registry/pods/a/"


def pod_write(name: str, ns: str = "a", pad: int = 0) -> tuple[str, bytes]:
    """(key, value) of a pod named `name` in `ns`, padded with an annotation of `pad` bytes."""
    o = Object()
    o.pod.metadata.name = name
    if pad:
        o.pod.metadata.annotations["pad"] = "x" * pad
    return f"/registry/pods/{ns}/{name}", o.SerializeToString()


class World:
    def __init__(self, tmp: Path, window: int = 1000) -> None:
        self.store = MVCCStore(str(tmp), history_window=0)
        self.hub = WatchHub(self.store, window=window)
        self.hub.attach(asyncio.get_running_loop())
        self.index = 0

    def apply(self, *writes: tuple[str, bytes]) -> None:
        """One committed batch: each write its own entry (revision), published together."""
        entries = []
        for key, value in writes:
            self.index += 1
            entries.append((self.index, enc.encode_txn(enc.Txn([], [enc.Op(enc.OP_PUT, key, value)]))))
        self.store.apply_batch(entries)

    def put(self, name: str, ns: str = "a") -> None:
        self.apply(pod_write(name, ns))

    def events(self, from_rev: int, start: str = PREFIX, **kw: object) -> AsyncIterator[bytes]:
        """The unbatched stream (one event per message) of keys under `start`."""
        return self.hub.messages("pods", start, start[:-1] + "0", from_rev, **kw)  # type: ignore[arg-type]

    def batches(self, from_rev: int, **kw: object) -> AsyncIterator[bytes]:
        return self.hub.messages("pods", PREFIX, PREFIX[:-1] + "0", from_rev, batched=True, **kw)  # type: ignore[arg-type]
