"""FakeStore: an in-memory ``pinnace.v1.Store`` servicer for unit tests and benchmarks of SDK users.

Not the real store (no raft, no validation, no graceful deletion); it keeps the parts clients
depend on: global revisions as resource_version, CAS on Update/UpdateStatus, label selectors,
limit/continue at one revision, Watch and WatchBatches (every event ready at once in one
message) from a revision with history, compaction (OUT_OF_RANGE), BOOKMARK events.

    fake = FakeStore()
    server, endpoint = await fake.serve()       # grpc.aio server on 127.0.0.1:<free port>
    client = AsyncClient([endpoint])
    ...
    await server.stop(None)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message

from pinnace.api import object_pb2, store_pb2, store_pb2_grpc
from pinnace.common import kinds
from pinnace.common.selectors import parse_label_selector


@dataclass
class _Event:
    type: int
    obj: object_pb2.Object
    revision: int
    prev: object_pb2.Object | None
    kind: str
    namespace: str
    msg: store_pb2.WatchEvent | None = None
    raw: bytes | None = None
    framed: bytes | None = None  # raw as a one-event WatchEventBatch (batches concatenate these)


MAX_BATCH_EVENTS = 1000


def _id(obj: object_pb2.Object) -> tuple[str, str, str]:
    m = kinds.meta(obj)
    return (kinds.kind_of(obj).key, m.namespace, m.name)


class FakeStore(store_pb2_grpc.StoreServicer):
    """In-memory Store; see the module docstring."""

    def __init__(self, bookmark_interval: float = 0.0) -> None:
        self.objects: dict[tuple[str, str, str], object_pb2.Object] = {}
        self.revision = 1
        self.compact_revision = 0
        self.history: list[_Event] = []
        self.bookmark_interval = bookmark_interval
        self._watchers: set[asyncio.Queue[_Event | None]] = set()
        self._sorted_keys: dict[str, list[tuple[str, str, str]]] = {}

    # -- helpers for tests ----------------------------------------------------------------------

    def put(self, msg: Message, *, notify: bool = True) -> object_pb2.Object:
        """Create or replace an object directly (no CAS), as a write would."""
        obj = object_pb2.Object()
        obj.CopyFrom(kinds.wrap(msg))
        key = _id(obj)
        prev = self.objects.get(key)
        self.revision += 1
        m = kinds.meta(obj)
        if not m.uid:
            m.uid = kinds.meta(prev).uid if prev is not None else str(uuid.uuid4())
        m.resource_version = str(self.revision)
        self.objects[key] = obj
        if prev is None:
            self._sorted_keys.pop(key[0], None)
        etype = store_pb2.WatchEvent.MODIFIED if prev is not None else store_pb2.WatchEvent.ADDED
        self._record(_Event(etype, obj, self.revision, prev, key[0], key[1]), notify)
        return obj

    def put_many(self, msgs: Iterable[Message]) -> None:
        for msg in msgs:
            self.put(msg, notify=False)
        self.history.clear()
        self.compact_revision = self.revision

    def remove(self, kind: str, namespace: str, name: str) -> object_pb2.Object | None:
        prev = self.objects.pop((kind, namespace, name), None)
        if prev is not None:
            self._sorted_keys.pop(kind, None)
            self.revision += 1
            self._record(_Event(store_pb2.WatchEvent.DELETED, prev, self.revision, prev, kind, namespace), True)
        return prev

    def compact(self, revision: int | None = None) -> None:
        rev = self.revision if revision is None else revision
        self.compact_revision = max(self.compact_revision, rev)
        self.history = [e for e in self.history if e.revision > self.compact_revision]

    def disconnect_watchers(self) -> None:
        """End every open watch stream (as a replica restart would)."""
        for q in list(self._watchers):
            q.put_nowait(None)

    def _record(self, ev: _Event, notify: bool) -> None:
        self.history.append(ev)
        if notify:
            for q in self._watchers:
                q.put_nowait(ev)

    async def serve(self, port: int = 0, without: Iterable[str] = ()) -> tuple[grpc.aio.Server, str]:
        """Serve on loopback; `without` leaves methods out (a store from before they existed)."""
        server = grpc.aio.server(options=[("grpc.max_send_message_length", 512 * 1024 * 1024)])
        server.add_generic_rpc_handlers((self.handler(without),))
        bound = server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        return server, f"127.0.0.1:{bound}"

    # -- RPCs ------------------------------------------------------------------------------------

    async def Create(self, request: store_pb2.CreateRequest, context: Any) -> object_pb2.Object:
        key = _id(request.object)
        if not key[2]:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "metadata.name: Required value")
        if key in self.objects:
            await context.abort(grpc.StatusCode.ALREADY_EXISTS, f"{key[0]} {key[1]}/{key[2]} already exists")
        obj = object_pb2.Object()
        obj.CopyFrom(request.object)
        m = kinds.meta(obj)
        m.uid = str(uuid.uuid4())
        m.generation = 1
        m.creation_timestamp.GetCurrentTime()
        if request.dry_run:
            return obj
        return self.put(obj)

    async def Get(self, request: store_pb2.GetRequest, context: Any) -> object_pb2.Object:
        obj = self.objects.get((request.kind, request.namespace, request.name))
        if obj is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"{request.kind} {request.namespace}/{request.name} not found"
            )
            raise AssertionError
        return obj

    def _sorted(self, kind: str) -> list[tuple[str, str, str]]:
        keys = self._sorted_keys.get(kind)
        if keys is None:
            keys = sorted(k for k in self.objects if k[0] == kind)
            self._sorted_keys[kind] = keys
        return keys

    async def List(self, request: store_pb2.ListRequest, context: Any) -> store_pb2.ListResponse:
        sel = parse_label_selector(request.label_selector)
        start = 0
        revision = self.revision
        if request.continue_token:
            rev_s, _, start_s = request.continue_token.partition(":")
            revision, start = int(rev_s), int(start_s)
        keys = self._sorted(request.kind)
        res = store_pb2.ListResponse(revision=revision)
        i = start
        while i < len(keys) and (request.limit <= 0 or len(res.items) < request.limit):
            k = keys[i]
            i += 1
            o = self.objects.get(k)
            if o is None or (request.namespace and k[1] != request.namespace):
                continue
            m = kinds.meta(o)
            if (sel.empty or sel.matches(m.labels)) and int(m.resource_version) <= revision:
                res.items.append(o)
        if i < len(keys):
            res.continue_token = f"{revision}:{i}"
            res.remaining_item_count = len(keys) - i
        return res

    async def _update(self, request: store_pb2.UpdateRequest, context: Any, status: bool) -> object_pb2.Object:
        key = _id(request.object)
        cur = self.objects.get(key)
        if cur is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"{key[0]} {key[1]}/{key[2]} not found")
            raise AssertionError
        new_meta = kinds.meta(request.object)
        if new_meta.resource_version and new_meta.resource_version != kinds.meta(cur).resource_version:
            await context.abort(
                grpc.StatusCode.ABORTED,
                f"{key[0]} {key[1]}/{key[2]}: the object has been modified; apply your changes to the latest version",
            )
        obj = object_pb2.Object()
        has_status = "status" in kinds.unwrap(cur).DESCRIPTOR.fields_by_name
        if status:
            obj.CopyFrom(cur)
            if has_status:
                inner: Any = kinds.unwrap(obj)
                inner.status.CopyFrom(kinds.unwrap(request.object).status)  # type: ignore[attr-defined]
        else:
            obj.CopyFrom(request.object)
            inner = kinds.unwrap(obj)
            old: Any = kinds.unwrap(cur)
            if has_status:
                inner.status.CopyFrom(old.status)
            m, om = kinds.meta(obj), kinds.meta(cur)
            m.uid = om.uid
            m.creation_timestamp.CopyFrom(om.creation_timestamp)
            spec_changed = "spec" in old.DESCRIPTOR.fields_by_name and old.spec != inner.spec
            m.generation = om.generation + (1 if spec_changed else 0)
        if request.dry_run:
            return obj
        return self.put(obj)

    async def Update(self, request: store_pb2.UpdateRequest, context: Any) -> object_pb2.Object:
        return await self._update(request, context, False)

    async def UpdateStatus(self, request: store_pb2.UpdateRequest, context: Any) -> object_pb2.Object:
        return await self._update(request, context, True)

    async def Delete(self, request: store_pb2.DeleteRequest, context: Any) -> object_pb2.Object:
        key = (request.kind, request.namespace, request.name)
        cur = self.objects.get(key)
        if cur is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"{key[0]} {key[1]}/{key[2]} not found")
            raise AssertionError
        pre = request.preconditions
        if pre.resource_version and pre.resource_version != kinds.meta(cur).resource_version:
            await context.abort(grpc.StatusCode.ABORTED, "precondition failed: resource_version")
        if request.dry_run:
            return cur
        self.remove(*key)
        return cur

    async def _batches(self, request: store_pb2.WatchRequest, context: Any) -> AsyncIterator[list[_Event]]:
        """The events one watch sends, grouped as they are ready (BOOKMARK events are made up on the fly)."""
        if request.from_revision and request.from_revision < self.compact_revision:
            await context.abort(
                grpc.StatusCode.OUT_OF_RANGE,
                f"revision {request.from_revision} is compacted (compact revision {self.compact_revision})",
            )
        sel = parse_label_selector(request.label_selector)
        q: asyncio.Queue[_Event | None] = asyncio.Queue()
        self._watchers.add(q)
        from_rev = request.from_revision or self.revision

        def matches(ev: _Event) -> bool:
            if ev.kind != request.kind or ev.revision <= from_rev:
                return False
            if request.namespace and ev.namespace != request.namespace:
                return False
            if request.name and kinds.meta(ev.obj).name != request.name:
                return False
            if sel.empty:
                return True
            now = sel.matches(kinds.meta(ev.obj).labels)
            before = ev.prev is not None and sel.matches(kinds.meta(ev.prev).labels)
            return now or before

        def as_seen(ev: _Event) -> _Event:
            """For a selector: entering the selection is ADDED, leaving it DELETED (with the last
            state that matched, at this revision), as the store sends them."""
            if sel.empty or ev.type == store_pb2.WatchEvent.DELETED or ev.prev is None:
                return ev
            now = sel.matches(kinds.meta(ev.obj).labels)
            if now and not sel.matches(kinds.meta(ev.prev).labels):
                return _Event(store_pb2.WatchEvent.ADDED, ev.obj, ev.revision, ev.prev, ev.kind, ev.namespace)
            if not now:
                last = object_pb2.Object()
                last.CopyFrom(ev.prev)
                kinds.meta(last).resource_version = str(ev.revision)
                return _Event(store_pb2.WatchEvent.DELETED, last, ev.revision, ev.prev, ev.kind, ev.namespace)
            return ev

        try:
            replay = [as_seen(ev) for ev in self.history if matches(ev)]
            for i in range(0, len(replay), MAX_BATCH_EVENTS):
                yield replay[i : i + MAX_BATCH_EVENTS]
            while True:
                timeout = self.bookmark_interval if request.bookmarks and self.bookmark_interval else None
                try:
                    item = await asyncio.wait_for(q.get(), timeout)
                except TimeoutError:
                    yield [_Event(store_pb2.WatchEvent.BOOKMARK, object_pb2.Object(), self.revision, None, "", "")]
                    continue
                ready, closed = _drain(q, item)
                batch = [as_seen(ev) for ev in ready if matches(ev)]
                if batch:
                    yield batch
                if closed:
                    return
        finally:
            self._watchers.discard(q)

    async def _events(self, request: store_pb2.WatchRequest, context: Any) -> AsyncIterator[_Event]:
        """The events one watch sends, one by one."""
        async for batch in self._batches(request, context):
            for ev in batch:
                yield ev

    @staticmethod
    def _message(ev: _Event) -> store_pb2.WatchEvent:
        if ev.msg is None:  # built once, shared by every watcher
            if ev.type == store_pb2.WatchEvent.BOOKMARK:
                return store_pb2.WatchEvent(type=ev.type, revision=ev.revision)  # type: ignore[arg-type]
            ev.msg = store_pb2.WatchEvent(type=ev.type, object=ev.obj, revision=ev.revision)  # type: ignore[arg-type]
            if ev.prev is not None:
                ev.msg.prev_object.CopyFrom(ev.prev)
        return ev.msg

    async def Watch(self, request: store_pb2.WatchRequest, context: Any) -> AsyncIterator[store_pb2.WatchEvent]:
        async for ev in self._events(request, context):
            yield self._message(ev)

    async def WatchBatches(
        self, request: store_pb2.WatchRequest, context: Any
    ) -> AsyncIterator[store_pb2.WatchEventBatch]:
        async for batch in self._batches(request, context):
            yield store_pb2.WatchEventBatch(events=[self._message(ev) for ev in batch])

    @classmethod
    def _raw(cls, ev: _Event) -> bytes:
        if ev.raw is None:
            ev.raw = cls._message(ev).SerializeToString()
        return ev.raw

    @classmethod
    def _framed(cls, ev: _Event) -> bytes:
        if ev.framed is None:
            ev.framed = store_pb2.WatchEventBatch(events=[cls._message(ev)]).SerializeToString()
        return ev.framed

    async def _watch_raw(self, request: store_pb2.WatchRequest, context: Any) -> AsyncIterator[bytes]:
        """Watch with each event serialized once, however many watchers get it (used by serve())."""
        async for ev in self._events(request, context):
            yield self._raw(ev)

    async def _watch_batches_raw(self, request: store_pb2.WatchRequest, context: Any) -> AsyncIterator[bytes]:
        """WatchBatches without re-serializing: serialized messages concatenate, repeated fields append."""
        async for batch in self._batches(request, context):
            yield b"".join(self._framed(ev) for ev in batch)

    def handler(self, without: Iterable[str] = ()) -> grpc.GenericRpcHandler:
        """The Store service's handlers (Watch and WatchBatches send pre-serialized events)."""

        def stream(fn: Any) -> grpc.RpcMethodHandler:
            return grpc.unary_stream_rpc_method_handler(
                fn, request_deserializer=store_pb2.WatchRequest.FromString, response_serializer=bytes
            )

        def unary(fn: Any, req: Any, resp: Any) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(
                fn, request_deserializer=req.FromString, response_serializer=resp.SerializeToString
            )

        handlers = {
            "Create": unary(self.Create, store_pb2.CreateRequest, object_pb2.Object),
            "Batch": unary(self.Batch, store_pb2.BatchRequest, store_pb2.BatchResponse),
            "Get": unary(self.Get, store_pb2.GetRequest, object_pb2.Object),
            "List": unary(self.List, store_pb2.ListRequest, store_pb2.ListResponse),
            "Update": unary(self.Update, store_pb2.UpdateRequest, object_pb2.Object),
            "UpdateStatus": unary(self.UpdateStatus, store_pb2.UpdateRequest, object_pb2.Object),
            "Delete": unary(self.Delete, store_pb2.DeleteRequest, object_pb2.Object),
            "Status": unary(self.Status, store_pb2.StatusRequest, store_pb2.StatusResponse),
            "Compact": unary(self.Compact, store_pb2.CompactRequest, store_pb2.CompactResponse),
            "Watch": stream(self._watch_raw),
            "WatchBatches": stream(self._watch_batches_raw),
        }
        for name in without:
            handlers.pop(name)
        return grpc.method_handlers_generic_handler("pinnace.v1.Store", handlers)

    async def Batch(self, request: store_pb2.BatchRequest, context: Any) -> store_pb2.BatchResponse:
        """Each op as its own call; an op's abort becomes its result's code and message."""
        resp = store_pb2.BatchResponse()
        for op in request.ops:
            which = op.WhichOneof("op")
            r = resp.results.add()
            calls: dict[str, Callable[[Any, Any], Awaitable[object_pb2.Object]]] = {
                "create": self.Create,
                "update": self.Update,
                "update_status": self.UpdateStatus,
                "delete": self.Delete,
            }
            try:
                if which is None:
                    raise _OpAbort(grpc.StatusCode.INVALID_ARGUMENT, "op: Required value")
                r.object.CopyFrom(await calls[which](getattr(op, which), _OpContext()))
            except _OpAbort as e:
                r.code, r.message = e.code.value[0], e.details
        return resp

    async def Status(self, request: store_pb2.StatusRequest, context: Any) -> store_pb2.StatusResponse:
        return store_pb2.StatusResponse(
            id=1, leader_id=1, role="leader", revision=self.revision, compact_revision=self.compact_revision
        )

    async def Compact(self, request: store_pb2.CompactRequest, context: Any) -> store_pb2.CompactResponse:
        self.compact(request.revision or None)
        return store_pb2.CompactResponse(compact_revision=self.compact_revision)


class _OpAbort(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class _OpContext:
    """The context one op of a Batch runs with: abort() ends that op only."""

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise _OpAbort(code, details)


def _drain(q: asyncio.Queue[_Event | None], first: _Event | None) -> tuple[list[_Event], bool]:
    """`first` and every event already queued after it; True when the stream was told to end."""
    ready: list[_Event] = []
    item = first
    while item is not None:
        ready.append(item)
        if q.empty() or len(ready) >= MAX_BATCH_EVENTS:
            return ready, False
        item = q.get_nowait()
    return ready, True


class ThreadedFakeStore:
    """A FakeStore served from its own event loop thread (for synchronous tests): ``.store``,
    ``.endpoint``, ``.stop()``."""

    def __init__(self, bookmark_interval: float = 0.0) -> None:
        import threading

        self.store = FakeStore(bookmark_interval)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-store", daemon=True)
        self._thread.start()
        self.server, self.endpoint = asyncio.run_coroutine_threadsafe(self.store.serve(), self._loop).result()

    def call(self, fn: Any, *args: Any) -> Any:
        """Run fn(*args) on the store's loop thread."""

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(None), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
