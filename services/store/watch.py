"""The watch hub: applied events fan out to watch streams, in order, without gaps or duplicates.

Applied events are appended to one in-memory channel per kind (plus one for "every kind"). A
channel is a bounded log with sequence numbers and one shared wake-up future, so publishing costs
O(1) per event however many watchers there are; each watcher walks the log from its own cursor.
A watcher that falls behind the in-memory window (or starts from an old revision) replays from
the SQLite history first, then switches to the live log, skipping what it already sent.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from pinnace.api import object_pb2
from services.store import encoding as enc
from services.store.mvcc import REGISTRY_PREFIX, Compacted, Event, MVCCStore

CHANNEL_WINDOW = 5_000
BOOKMARK_INTERVAL = 5.0
ALL = ""


class HubEvent:
    """One event as sent to watchers; the wire bytes and the decoded objects are computed once."""

    __slots__ = ("_obj", "_prev", "_wire", "ev")

    def __init__(self, ev: Event) -> None:
        self.ev = ev
        self._wire: bytes | None = None
        self._obj: object_pb2.Object | None = None
        self._prev: object_pb2.Object | None = None

    @property
    def revision(self) -> int:
        return self.ev.revision

    def object_bytes(self) -> bytes:
        ev = self.ev
        if ev.type == enc.DELETED:
            assert ev.prev is not None
            return enc.with_rv(ev.prev, ev.revision)
        assert ev.value is not None
        return ev.value

    def wire(self, etype: int = 0) -> bytes:
        ev = self.ev
        if etype == 0 or etype == ev.type:
            if self._wire is None:
                self._wire = enc.watch_event_bytes(ev.type, ev.revision, self.object_bytes(), ev.prev)
            return self._wire
        return enc.watch_event_bytes(etype, ev.revision, self.object_bytes(), ev.prev)

    def obj(self) -> object_pb2.Object | None:
        if self._obj is None and self.ev.value is not None:
            self._obj = object_pb2.Object.FromString(self.ev.value)
        return self._obj

    def prev_obj(self) -> object_pb2.Object | None:
        if self._prev is None and self.ev.prev is not None:
            self._prev = object_pb2.Object.FromString(self.ev.prev)
        return self._prev


@dataclass
class Channel:
    """A bounded in-memory log of one kind's events (sequence numbers grow forever)."""

    log: list[HubEvent] = field(default_factory=list)
    base: int = 0  # sequence number of log[0]
    # One future per waiting watcher: cancelling one watcher never disturbs the others.
    waiters: set[asyncio.Future[None]] = field(default_factory=set)

    @property
    def end(self) -> int:
        return self.base + len(self.log)

    def append(self, events: list[HubEvent], window: int) -> None:
        self.log.extend(events)
        if len(self.log) > window + window // 4:
            drop = len(self.log) - window
            del self.log[:drop]
            self.base += drop
        waiters, self.waiters = self.waiters, set()
        for f in waiters:
            if not f.done():
                f.set_result(None)

    async def wait(self, timeout: float | None) -> None:
        """Until the next append (or the timeout)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.add(fut)
        try:
            if timeout is None:
                await fut
            else:
                await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            self.waiters.discard(fut)


class WatchClosed(Exception):
    """The hub was reset (snapshot restore) or is stopping: the client should re-watch."""


def kind_of_key(key: str) -> str:
    # /registry/<plural>/...
    return key[len(REGISTRY_PREFIX) :].split("/", 1)[0]


class WatchHub:
    """Receives applied events (from any thread) and serves ordered streams to watchers."""

    def __init__(self, store: MVCCStore, window: int = CHANNEL_WINDOW) -> None:
        self.store = store
        self.window = window
        self.revision = store.revision()
        self.generation = 0
        self.watchers = 0
        self._channels: dict[str, Channel] = {ALL: Channel()}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._closed = False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self.revision = self.store.revision()
        self.store.listeners.append(self.publish)
        self.store.reset_listeners.append(self.reset)

    # ---------------------------------------------------------------- producer side

    def publish(self, events: list[Event]) -> None:
        """Called by the state machine after each committed batch, from any thread."""
        if self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._dispatch(events)
        else:
            self._loop.call_soon_threadsafe(self._dispatch, events)

    def reset(self) -> None:
        if self._loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._reset()
        else:
            self._loop.call_soon_threadsafe(self._reset)

    def _reset(self) -> None:
        self.generation += 1
        self.revision = self.store.revision()
        for ch in self._channels.values():
            ch.append([], self.window)

    def close(self) -> None:
        self._closed = True
        self._reset()

    def _dispatch(self, events: list[Event]) -> None:
        by_kind: dict[str, list[HubEvent]] = {}
        all_events: list[HubEvent] = []
        for ev in events:
            if not ev.key.startswith(REGISTRY_PREFIX):
                continue
            he = HubEvent(ev)
            all_events.append(he)
            by_kind.setdefault(kind_of_key(ev.key), []).append(he)
        if events:
            self.revision = max(self.revision, events[-1].revision)
        for kind, evs in by_kind.items():
            ch = self._channels.get(kind)
            if ch is not None:
                ch.append(evs, self.window)
        self._channels[ALL].append(all_events, self.window)

    def channel(self, kind: str) -> Channel:
        ch = self._channels.get(kind)
        if ch is None:
            ch = self._channels[kind] = Channel()
        return ch

    # ---------------------------------------------------------------- consumer side

    async def stream(
        self,
        plural: str,
        start: str,
        end: str,
        from_revision: int,
        select: Callable[[HubEvent], int] | None = None,
        bookmarks: bool = False,
        bookmark_interval: float = BOOKMARK_INTERVAL,
    ) -> AsyncIterator[bytes]:
        """Serialized WatchEvents for keys in [start, end) with revision > from_revision.

        select(event) returns the event type to send (0 = skip) for filtered watches.
        Raises Compacted (from_revision too old) or WatchClosed.
        """
        loop = asyncio.get_running_loop()
        ch = self.channel(plural)
        gen = self.generation
        floor = from_revision if from_revision > 0 else self.revision
        cursor = ch.end
        need_replay = from_revision > 0 and from_revision < self.revision
        last_sent_at = loop.time()
        self.watchers += 1
        try:
            while True:
                if self._closed or gen != self.generation:
                    raise WatchClosed("watch reset by the store; re-watch from your last revision")
                if need_replay:
                    need_replay = False
                    cursor = ch.end
                    while True:
                        evs = self.store.history(floor, start, end, 1000)
                        if not evs:
                            break
                        for ev in evs:
                            data = self._render(HubEvent(ev), select)
                            if data is not None:
                                yield data
                                last_sent_at = loop.time()
                        floor = evs[-1].revision
                if cursor < ch.base:
                    need_replay = True  # fell behind the in-memory window: catch up from disk
                    continue
                while cursor < ch.end and cursor >= ch.base:
                    he = ch.log[cursor - ch.base]
                    cursor += 1
                    ev = he.ev
                    if ev.revision <= floor:
                        continue
                    floor = ev.revision  # at most one registry event per revision
                    if not (start <= ev.key < end):
                        continue
                    data = self._render(he, select)
                    if data is not None:
                        yield data
                        last_sent_at = loop.time()
                if cursor < ch.end:
                    continue
                timeout = None
                if bookmarks:
                    timeout = max(0.0, last_sent_at + bookmark_interval - loop.time())
                    if timeout == 0.0:
                        yield enc.watch_event_bytes(enc.BOOKMARK, max(floor, self.revision), None, None)
                        last_sent_at = loop.time()
                        continue
                await ch.wait(timeout)
        finally:
            self.watchers -= 1

    @staticmethod
    def _render(he: HubEvent, select: Callable[[HubEvent], int] | None) -> bytes | None:
        if select is None:
            return he.wire()
        etype = select(he)
        if etype == 0:
            return None
        return he.wire(etype)


def replay_events(store: MVCCStore, after: int, start: str, end: str) -> list[Event]:
    """All history events after a revision (for tests and tools)."""
    out: list[Event] = []
    while True:
        evs = store.history(after, start, end, 1000)
        if not evs:
            return out
        out += evs
        after = evs[-1].revision


__all__ = ["ALL", "Compacted", "HubEvent", "WatchClosed", "WatchHub", "replay_events"]
