"""AsyncClient: typed asyncio access to the store, generic over every kind in the ``Object`` oneof.

Connects to any of ``endpoints`` and fails over to the next one when a replica is unreachable;
UNAVAILABLE is retried with exponential backoff until ``retry_timeout``; every unary call has a
per-attempt deadline (``timeout``). Errors are mapped to :mod:`pinnace.client.errors`.

Kinds are named by their message class (``Pod``, ``Deployment``); a kind message (or an ``Object``)
goes in and the same type comes back.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

import grpc
from google.protobuf.message import Message

from pinnace.api import object_pb2, store_pb2, store_pb2_grpc
from pinnace.client import errors
from pinnace.client.batching import WriteBatcher, as_op
from pinnace.client.retry import Backoff
from pinnace.client.types import BOOKMARK, ListResult, WatchEvent
from pinnace.common import kinds

M = TypeVar("M", bound=Message)
KindArg = type[M]

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 512 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]

_EVENT_NAMES = {
    store_pb2.WatchEvent.ADDED: "ADDED",
    store_pb2.WatchEvent.MODIFIED: "MODIFIED",
    store_pb2.WatchEvent.DELETED: "DELETED",
    store_pb2.WatchEvent.BOOKMARK: "BOOKMARK",
}
# Stream errors after which a watch reconnects (from the last seen revision).
_RESUMABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.CANCELLED,
}


def kind_info(kind: Any) -> kinds.KindInfo:
    """KindInfo for a message class/instance, an Object, a KindInfo or a kind name ("pods", "deploy")."""
    if isinstance(kind, kinds.KindInfo):
        return kind
    if isinstance(kind, str):
        return kinds.lookup(kind)
    if isinstance(kind, object_pb2.Object):
        return kinds.kind_of(kind)
    return kinds.of_message(kind)


def _ns(info: kinds.KindInfo, namespace: str | None, default: str) -> str:
    if not info.namespaced:
        return ""
    return default if namespace is None else namespace


def _code(exc: grpc.RpcError) -> grpc.StatusCode | None:
    fn = getattr(exc, "code", None)
    return fn() if callable(fn) else None


def _endpoints(endpoints: Sequence[str] | str) -> list[str]:
    if isinstance(endpoints, str):
        endpoints = endpoints.split(",")
    eps = [e.strip() for e in endpoints if e.strip()]
    if not eps:
        raise ValueError("no store endpoints given")
    return eps


class AsyncClient:
    """Asyncio client of the Store service. See the module docstring and docs/CONTRACTS.md."""

    def __init__(
        self,
        endpoints: Sequence[str] | str = ("127.0.0.1:7000",),
        tls: Any = None,
        *,
        timeout: float = 10.0,
        retry_timeout: float = 30.0,
        options: Sequence[tuple[str, Any]] = (),
        batch_writes: bool = True,
    ) -> None:
        self.endpoints = _endpoints(endpoints)
        # Concurrent writes share Store.Batch calls (see pinnace.client.batching).
        self.batch_writes = batch_writes
        self.batch_watches = True
        self._batchers: dict[int, WriteBatcher] = {}
        self.tls = tls
        self.timeout = timeout
        self.retry_timeout = retry_timeout
        self._options = [*CHANNEL_OPTIONS, *options]
        self._channels: dict[int, grpc.aio.Channel] = {}
        self._stubs: dict[int, store_pb2_grpc.StoreStub] = {}
        self._current = 0
        self._closed = False

    # -- connection management -------------------------------------------------------------

    def _stub(self, index: int) -> store_pb2_grpc.StoreStub:
        stub = self._stubs.get(index)
        if stub is None:
            target = self.endpoints[index]
            if self.tls is not None:
                from pinnace.common import tls as tls_mod

                creds = tls_mod.channel_credentials(self.tls)
                # Servers' certificates carry the name "pinnace" (tls.SERVER_NAME), whatever the address.
                opts = [*self._options, ("grpc.ssl_target_name_override", tls_mod.SERVER_NAME)]
                channel = grpc.aio.secure_channel(target, creds, options=opts)
            else:
                channel = grpc.aio.insecure_channel(target, options=self._options)
            self._channels[index] = channel
            stub = store_pb2_grpc.StoreStub(channel)
            self._stubs[index] = stub
        return stub

    def _failover(self, index: int) -> None:
        if self._current == index:
            self._current = (index + 1) % len(self.endpoints)

    def next_endpoint(self) -> None:
        """Use the next endpoint from now on (e.g. after the current replica stopped answering a watch)."""
        self._current = (self._current + 1) % len(self.endpoints)

    @property
    def current_endpoint(self) -> str:
        return self.endpoints[self._current]

    async def close(self) -> None:
        self._closed = True
        channels = list(self._channels.values())
        self._channels.clear()
        self._stubs.clear()
        self._batchers.clear()
        for ch in channels:
            await ch.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _batcher(self, index: int) -> WriteBatcher:
        b = self._batchers.get(index)
        if b is None:
            stub = self._stub(index)
            b = self._batchers[index] = WriteBatcher(lambda req, timeout: stub.Batch(req, timeout=timeout))
        return b

    async def _call(self, method: str, request: Message, what: str, *, idempotent: bool = True) -> Any:
        """One unary RPC (a write may share a Batch call) with failover and UNAVAILABLE retries
        until retry_timeout."""
        deadline = time.monotonic() + self.retry_timeout
        backoff = Backoff(base=0.05, cap=1.0)
        tried = 0
        op = as_op(method, request) if self.batch_writes else None
        while True:
            index = self._current
            try:
                if op is not None:
                    return await self._batcher(index).call(op, self.timeout)
                return await getattr(self._stub(index), method)(request, timeout=self.timeout)
            except grpc.RpcError as exc:
                if op is not None and _code(exc) == grpc.StatusCode.UNIMPLEMENTED:
                    self.batch_writes = False  # a store without Batch: one call per write from now on
                    op = None
                    continue
                err = errors.from_rpc_error(exc)
                retryable = isinstance(err, errors.Unavailable) and (idempotent or not isinstance(err, errors.Timeout))
                if not retryable or self._closed:
                    if isinstance(err, errors.Unavailable):
                        err = errors.from_rpc_error(exc, what)
                    raise err from None
                self._failover(index)
                tried += 1
                if time.monotonic() >= deadline:
                    raise errors.Unavailable(
                        f"{what}: no store replica answered in {self.retry_timeout:g}s "
                        f"({', '.join(self.endpoints)}); last error: {err.message}"
                    ) from None
                # Try each endpoint once quickly before sleeping.
                if tried % len(self.endpoints) == 0:
                    await asyncio.sleep(min(backoff.next(), max(0.0, deadline - time.monotonic())))

    # -- typed helpers ---------------------------------------------------------------------

    @staticmethod
    def _wrap(obj: Message) -> object_pb2.Object:
        return kinds.wrap(obj)

    @staticmethod
    def _like(original: Any, result: object_pb2.Object) -> Any:
        if isinstance(original, object_pb2.Object):
            return result
        return kinds.unwrap(result)

    @staticmethod
    def _describe(verb: str, obj: Message) -> str:
        info = kind_info(obj)
        m = kinds.meta(obj)
        name = f"{m.namespace}/{m.name}" if m.namespace else m.name
        return f"{verb} {info.key} {name}"

    # -- CRUD ------------------------------------------------------------------------------

    async def create(self, obj: M, *, dry_run: bool = False) -> M:
        """Create ``obj`` (a kind message or Object); returns the stored object, same type."""
        req = store_pb2.CreateRequest(object=self._wrap(obj), dry_run=dry_run)
        res = await self._call("Create", req, self._describe("create", obj), idempotent=False)
        return cast(M, self._like(obj, res))

    async def get(self, kind: type[M], name: str, namespace: str | None = "default") -> M:
        """Get one object; raises errors.NotFound."""
        info = kind_info(kind)
        ns = _ns(info, namespace, "default") or ""
        req = store_pb2.GetRequest(kind=info.key, namespace=ns, name=name)
        res = await self._call("Get", req, f"get {info.key} {ns + '/' if ns else ''}{name}")
        return cast(M, kinds.unwrap(res))

    async def list(
        self,
        kind: type[M],
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        *,
        continue_token: str = "",
        revision: int = 0,
    ) -> ListResult[M]:
        """One List call (namespace None or "" = all namespaces); limit 0 = no limit."""
        info = kind_info(kind)
        req = store_pb2.ListRequest(
            kind=info.key,
            namespace=_ns(info, namespace, "") or "",
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            continue_token=continue_token,
            revision=revision,
        )
        res = await self._call("List", req, f"list {info.plural}")
        key = info.key
        items = [cast(M, getattr(o, key)) for o in res.items]
        return ListResult(items, res.revision, res.continue_token, res.remaining_item_count)

    async def iter_list(
        self,
        kind: type[M],
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        page_size: int = 500,
    ) -> AsyncIterator[M]:
        """Every matching object, fetched page by page (limit + continue)."""
        token = ""
        while True:
            page = await self.list(kind, namespace, label_selector, field_selector, page_size, continue_token=token)
            for item in page.items:
                yield item
            token = page.continue_token
            if not token:
                return

    async def list_all(
        self,
        kind: type[M],
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        page_size: int = 1000,
    ) -> ListResult[M]:
        """All pages in one ListResult; ``revision`` is the first page's (the one the pages are served at)."""
        items: list[M] = []
        token = ""
        revision = 0
        while True:
            page = await self.list(kind, namespace, label_selector, field_selector, page_size, continue_token=token)
            if not revision:
                revision = page.revision
            items.extend(page.items)
            token = page.continue_token
            if not token:
                return ListResult(items, revision)

    async def update(self, obj: M, *, dry_run: bool = False) -> M:
        """Replace spec and metadata; a compare-and-swap when metadata.resource_version is set (errors.Conflict)."""
        req = store_pb2.UpdateRequest(object=self._wrap(obj), dry_run=dry_run)
        res = await self._call("Update", req, self._describe("update", obj))
        return cast(M, self._like(obj, res))

    async def update_status(self, obj: M, *, dry_run: bool = False) -> M:
        """Replace status only; same compare-and-swap rule as update."""
        req = store_pb2.UpdateRequest(object=self._wrap(obj), dry_run=dry_run)
        res = await self._call("UpdateStatus", req, self._describe("update status of", obj))
        return cast(M, self._like(obj, res))

    async def delete(
        self,
        kind: type[M],
        name: str,
        namespace: str | None = "default",
        grace_period_seconds: int | None = None,
        *,
        uid: str = "",
        resource_version: str = "",
        propagation_policy: str = "",
        dry_run: bool = False,
    ) -> M | None:
        """Delete; returns the object's last state (deletion_timestamp set if the deletion is graceful),
        or None when the store returns nothing. errors.NotFound if it does not exist."""
        info = kind_info(kind)
        ns = _ns(info, namespace, "default") or ""
        req = store_pb2.DeleteRequest(
            kind=info.key,
            namespace=ns,
            name=name,
            propagation_policy=propagation_policy,
            dry_run=dry_run,
        )
        if uid or resource_version:
            req.preconditions.uid = uid
            req.preconditions.resource_version = resource_version
        if grace_period_seconds is not None:
            req.grace_period_seconds = grace_period_seconds
        res = await self._call("Delete", req, f"delete {info.key} {ns + '/' if ns else ''}{name}", idempotent=False)
        if res.WhichOneof("kind") is None:
            return None
        return cast(M, kinds.unwrap(res))

    async def _mutate(
        self,
        kind: type[M],
        name: str,
        namespace: str | None,
        fn: Callable[[M], Any],
        status: bool,
        attempts: int,
    ) -> M:
        backoff = Backoff(base=0.01, cap=0.5)
        for attempt in range(attempts):
            obj = await self.get(kind, name, namespace)
            result = fn(obj)
            if inspect.isawaitable(result):
                result = await result
            new = obj if result is None else result
            try:
                if status:
                    return await self.update_status(new)
                return await self.update(new)
            except errors.Conflict:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(backoff.next())
        raise AssertionError("unreachable")

    async def mutate(
        self,
        kind: type[M],
        name: str,
        namespace: str | None = "default",
        fn: Callable[[M], M | Awaitable[M | None] | None] | None = None,
        *,
        attempts: int = 20,
    ) -> M:
        """Read-modify-write: get, ``fn(obj)`` (mutate in place or return a new object), update with CAS;
        on Conflict re-read and re-apply ``fn``."""
        if fn is None:
            raise TypeError("mutate needs fn")
        return await self._mutate(kind, name, namespace, fn, False, attempts)

    async def mutate_status(
        self,
        kind: type[M],
        name: str,
        namespace: str | None = "default",
        fn: Callable[[M], M | Awaitable[M | None] | None] | None = None,
        *,
        attempts: int = 20,
    ) -> M:
        """Like mutate, but writes with UpdateStatus."""
        if fn is None:
            raise TypeError("mutate_status needs fn")
        return await self._mutate(kind, name, namespace, fn, True, attempts)

    # -- watch -----------------------------------------------------------------------------

    async def current_revision(self, kind: Any = "namespace") -> int:
        """The store's current revision (a cheap List with limit 1)."""
        return (await self.list(kind_info(kind).message, limit=1)).revision

    async def watch(
        self,
        kind: type[M],
        namespace: str | None = None,
        from_revision: int = 0,
        label_selector: str = "",
        field_selector: str = "",
        *,
        name: str = "",
        bookmarks: bool = False,
        resume: bool = True,
    ) -> AsyncIterator[WatchEvent[M]]:
        """Typed watch events with revision > from_revision (0 = from now).

        With ``resume`` (default) a broken stream is reopened, on any replica, from the last revision
        seen, so the iterator does not stop on a store restart; it raises errors.Gone when that
        revision was compacted (list again), and other errors as they come.
        """
        info = kind_info(kind)
        ns = _ns(info, namespace, "") or ""
        key = info.key
        revision = from_revision
        if revision == 0 and resume:
            revision = await self.current_revision(info)
        backoff = Backoff(base=0.05, cap=2.0)
        while True:
            index = self._current
            req = store_pb2.WatchRequest(
                kind=key,
                namespace=ns,
                label_selector=label_selector,
                field_selector=field_selector,
                from_revision=revision,
                bookmarks=bookmarks,
                name=name,
            )
            batched = self.batch_watches
            stub = self._stub(index)
            # WatchBatches: all the events ready at once in one message; Watch: one message each
            call: Any = stub.WatchBatches(req) if batched else stub.Watch(req)
            try:
                async for message in call:
                    backoff.reset()
                    for ev in message.events if batched else (message,):
                        if ev.revision > revision:
                            revision = ev.revision
                        etype = _EVENT_NAMES.get(ev.type, "UNKNOWN")
                        if etype == BOOKMARK:
                            if not bookmarks:
                                continue
                            obj = cast(M, info.message())
                        else:
                            obj = cast(M, getattr(ev.object, key))
                        prev = cast(M, getattr(ev.prev_object, key)) if ev.HasField("prev_object") else None
                        yield WatchEvent(etype, obj, ev.revision, prev)
            except grpc.RpcError as exc:
                err = errors.from_rpc_error(exc, f"watch {info.plural}")
                code = _code(exc)
                if batched and code == grpc.StatusCode.UNIMPLEMENTED:
                    self.batch_watches = False  # a store without WatchBatches: plain Watch from now on
                    continue
                if not resume or self._closed or code not in _RESUMABLE:
                    raise err from None
                self._failover(index)
            finally:
                call.cancel()
            if not resume or self._closed:
                return
            await asyncio.sleep(backoff.next())

    # -- cluster ---------------------------------------------------------------------------

    async def status(self) -> store_pb2.StatusResponse:
        """Replica/raft status of the replica currently in use."""
        res: store_pb2.StatusResponse = await self._call("Status", store_pb2.StatusRequest(), "status")
        return res

    async def compact(self, revision: int) -> int:
        """Drop history up to ``revision``; returns the compact revision."""
        res = await self._call("Compact", store_pb2.CompactRequest(revision=revision), "compact")
        return int(res.compact_revision)
