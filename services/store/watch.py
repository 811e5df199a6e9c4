"""The watch hub: applied events fan out to watch streams, in order, without gaps or duplicates.

Applied events are appended to one in-memory channel per kind (plus one for "every kind"). A
channel is a bounded log with sequence numbers and one shared wake-up future, so publishing costs
O(1) per event however many watchers there are; each watcher walks the log from its own cursor.
A watcher that falls behind the in-memory window (or starts from an old revision) replays from
the SQLite history first, then switches to the live log, skipping what it already sent.

Per wake-up a watcher takes everything available to it at once (capped at MAX_BATCH_EVENTS events
and MAX_BATCH_BYTES bytes): `messages` sends those events as one message each (Watch), or with
`batched` as one WatchEventBatch (WatchBatches), so a watcher costs O(1) stream writes per
wake-up. Events are serialized once per event, never per watcher: a batch is the
concatenation of the events' cached "framed" bytes (each a WatchEventBatch.events field). Watchers
woken at the same position of a channel with the same key range (and no selector) share one
collection and one joined message, so the work per event does not grow with the watchers either.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

from pinnace.api import object_pb2
from services.store import encoding as enc
from services.store.mvcc import REGISTRY_PREFIX, Compacted, Event, MVCCStore

CHANNEL_WINDOW = 5_000
BOOKMARK_INTERVAL = 5.0
ALL = ""
# One stream message (WatchEventBatch) at most: the events of one wake-up are split beyond these.
# A slow watcher holds up to one message in gRPC's buffers, so the byte cap bounds that memory
# (and stays well under gRPC's default 4 MiB receive limit).
MAX_BATCH_EVENTS = 1_000
MAX_BATCH_BYTES = 256 * 1024

Select = Callable[["HubEvent"], int]


def frame(event_bytes: bytes) -> bytes:
    """A serialized WatchEvent as one element of WatchEventBatch.events (field 1, length-delimited).

    A WatchEventBatch is the concatenation of its framed events, so batches are built by joining.
    """
    return b"\x0a" + enc.varint(len(event_bytes)) + event_bytes


class HubEvent:
    """One event as sent to watchers; the wire bytes and the decoded objects are computed once."""

    __slots__ = ("_framed", "_obj", "_prev", "_wire", "ev")

    def __init__(self, ev: Event) -> None:
        self.ev = ev
        self._wire: bytes | None = None
        self._framed: bytes | None = None
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
        """The serialized WatchEvent (etype 0 = the event's own type)."""
        ev = self.ev
        if etype == 0 or etype == ev.type:
            if self._wire is None:
                self._wire = enc.watch_event_bytes(ev.type, ev.revision, self.object_bytes(), ev.prev)
            return self._wire
        if etype == enc.DELETED and ev.prev is not None:
            # the object left a filtered watch's selection: like Kubernetes, send the last state the
            # watcher could see (at this event's revision), not the new one it does not match
            return enc.watch_event_bytes(etype, ev.revision, enc.with_rv(ev.prev, ev.revision), ev.prev)
        return enc.watch_event_bytes(etype, ev.revision, self.object_bytes(), ev.prev)

    def framed(self, etype: int = 0) -> bytes:
        """wire(etype) framed as a WatchEventBatch element (cached for the event's own type)."""
        if etype == 0 or etype == self.ev.type:
            if self._framed is None:
                self._framed = frame(self.wire())
            return self._framed
        return frame(self.wire(etype))

    def render(self, select: Select | None, framed: bool) -> bytes | None:
        """What one watcher sends for this event (None = filtered out by select)."""
        etype = 0
        if select is not None:
            etype = select(self)
            if etype == 0:
                return None
        return self.framed(etype) if framed else self.wire(etype)

    def obj(self) -> object_pb2.Object | None:
        if self._obj is None and self.ev.value is not None:
            self._obj = object_pb2.Object.FromString(self.ev.value)
        return self._obj

    def prev_obj(self) -> object_pb2.Object | None:
        if self._prev is None and self.ev.prev is not None:
            self._prev = object_pb2.Object.FromString(self.ev.prev)
        return self._prev


class Batch:
    """The events of one stream message; joined into a WatchEventBatch once, however many watchers send it."""

    __slots__ = ("_joined", "items")

    def __init__(self, items: list[bytes]) -> None:
        self.items = items
        self._joined: bytes | None = None

    def joined(self) -> bytes:
        if self._joined is None:
            self._joined = b"".join(self.items)
        return self._joined


# What a watcher takes from a channel at one wake-up: its messages, then its new cursor and floor.
Taken = tuple[list[Batch], int, int]


@dataclass
class Channel:
    """A bounded in-memory log of one kind's events (sequence numbers grow forever)."""

    log: list[HubEvent] = field(default_factory=list)
    base: int = 0  # sequence number of log[0]
    # One future per waiting watcher: cancelling one watcher never disturbs the others.
    waiters: set[asyncio.Future[None]] = field(default_factory=set)
    # What watchers took since the last append, by (cursor, floor, start, end, framed): the next
    # watcher at the same position with the same range takes the same (see `take`).
    taken: dict[tuple[int, int, str, str, bool], Taken] = field(default_factory=dict)

    @property
    def end(self) -> int:
        return self.base + len(self.log)

    def append(self, events: list[HubEvent], window: int) -> None:
        self.taken.clear()
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

    async def messages(
        self,
        plural: str,
        start: str,
        end: str,
        from_revision: int,
        select: Select | None = None,
        bookmarks: bool = False,
        bookmark_interval: float = BOOKMARK_INTERVAL,
        *,
        batched: bool = False,
    ) -> AsyncIterator[bytes]:
        """A watch's stream messages for keys in [start, end) with revision > from_revision: one
        serialized WatchEvent each, or with `batched` one serialized WatchEventBatch per wake-up
        (everything available then).

        select(event) returns the event type to send (0 = skip) for filtered watches.
        Raises Compacted (from_revision too old) or WatchClosed.
        """
        batches = self.batches(plural, start, end, from_revision, select, bookmarks, bookmark_interval, framed=batched)
        async for batch in batches:
            if batched:
                yield batch.joined()
            else:
                for data in batch.items:
                    yield data

    async def batches(
        self,
        plural: str,
        start: str,
        end: str,
        from_revision: int,
        select: Select | None = None,
        bookmarks: bool = False,
        bookmark_interval: float = BOOKMARK_INTERVAL,
        *,
        framed: bool = False,
    ) -> AsyncIterator[Batch]:
        """The events of `messages`, as everything available at once (one stream message's worth each).

        Each batch is non-empty and within MAX_BATCH_EVENTS / MAX_BATCH_BYTES (one oversized event goes
        alone); with `framed` its items are WatchEventBatch elements (see `frame`), else WatchEvents.
        """
        loop = asyncio.get_running_loop()
        ch = self.channel(plural)
        gen = self.generation
        floor = from_revision if from_revision > 0 else self.revision
        cursor = ch.end
        need_replay = 0 < from_revision < self.revision
        last_sent_at = loop.time()
        self.watchers += 1
        try:
            while True:
                if self._closed or gen != self.generation:
                    raise WatchClosed("watch reset by the store; re-watch from your last revision")
                if need_replay:
                    need_replay = False
                    cursor = ch.end
                    while (page := self._history(floor, start, end, select, framed)) is not None:
                        items, floor = page
                        for chunk in split(items):
                            yield Batch(chunk)
                            last_sent_at = loop.time()
                if cursor < ch.base:
                    need_replay = True  # fell behind the in-memory window: catch up from disk
                    continue
                batches, cursor, floor = take(ch, cursor, floor, start, end, select, framed)
                for batch in batches:
                    yield batch
                    last_sent_at = loop.time()
                if cursor < ch.end:
                    continue
                timeout = None
                if bookmarks:
                    timeout = max(0.0, last_sent_at + bookmark_interval - loop.time())
                    if timeout == 0.0:
                        yield Batch([self._bookmark(floor, framed)])
                        last_sent_at = loop.time()
                        continue
                await ch.wait(timeout)
                # Let whatever is already scheduled (e.g. the next applied batch) land before collecting,
                # so a burst goes out in one message; this costs one loop turn, not a fixed delay.
                await asyncio.sleep(0)
        finally:
            self.watchers -= 1

    def _history(
        self, floor: int, start: str, end: str, select: Select | None, framed: bool
    ) -> tuple[list[bytes], int] | None:
        """One page of the SQLite history after `floor`, rendered, and the page's last revision."""
        evs = self.store.history(floor, start, end, MAX_BATCH_EVENTS)
        if not evs:
            return None
        items = [data for ev in evs if (data := HubEvent(ev).render(select, framed)) is not None]
        return items, evs[-1].revision

    def _bookmark(self, floor: int, framed: bool) -> bytes:
        data = enc.watch_event_bytes(enc.BOOKMARK, max(floor, self.revision), None, None)
        return frame(data) if framed else data


def take(ch: Channel, cursor: int, floor: int, start: str, end: str, select: Select | None, framed: bool) -> Taken:
    """A watcher's messages from the channel's events at `cursor` on; its new cursor and floor.

    Unfiltered watchers share: what one took at a position is what the next one there gets (until the
    next append). The caller has checked cursor >= ch.base.
    """
    if select is not None:
        return _take(ch, cursor, floor, start, end, select, framed)
    key = (cursor, floor, start, end, framed)
    taken = ch.taken.get(key)
    if taken is None:
        taken = ch.taken[key] = _take(ch, cursor, floor, start, end, None, framed)
    return taken


def _take(ch: Channel, cursor: int, floor: int, start: str, end: str, select: Select | None, framed: bool) -> Taken:
    """Render the channel's events from `cursor` (at most MAX_BATCH_EVENTS sent), cut into messages.

    Nothing awaits here, so the log cannot move meanwhile.
    """
    items: list[bytes] = []
    log, base, stop = ch.log, ch.base, ch.end
    while cursor < stop and len(items) < MAX_BATCH_EVENTS:
        he = log[cursor - base]
        cursor += 1
        ev = he.ev
        if ev.revision <= floor:
            continue
        floor = ev.revision  # at most one registry event per revision
        if start <= ev.key < end:
            data = he.render(select, framed)
            if data is not None:
                items.append(data)
    return [Batch(chunk) for chunk in split(items)], cursor, floor


def split(items: list[bytes]) -> Iterator[list[bytes]]:
    """items cut into runs of at most MAX_BATCH_BYTES bytes (an event larger than that goes alone)."""
    if sum(map(len, items)) <= MAX_BATCH_BYTES:
        if items:
            yield items
        return
    run: list[bytes] = []
    size = 0
    for data in items:
        if run and size + len(data) > MAX_BATCH_BYTES:
            yield run
            run, size = [], 0
        run.append(data)
        size += len(data)
    if run:
        yield run


def replay_events(store: MVCCStore, after: int, start: str, end: str) -> list[Event]:
    """All history events after a revision (for tests and tools)."""
    out: list[Event] = []
    while True:
        evs = store.history(after, start, end, 1000)
        if not evs:
            return out
        out += evs
        after = evs[-1].revision


__all__ = ["ALL", "Batch", "Compacted", "HubEvent", "WatchClosed", "WatchHub", "frame", "replay_events", "split"]
