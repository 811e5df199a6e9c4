"""The pinnace.v1.Store gRPC service (grpc.aio) on top of the registry, the replicator and the MVCC store.

Writes: read the current object, let the registry build the new one, propose one small
transaction whose compares make it a compare-and-swap, retry internally when an unconditional
write raced. Responses are the stored bytes (already carrying their resource_version), sent
without re-serializing; requests are parsed once by gRPC.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from pinnace.api import store_pb2
from pinnace.api.object_pb2 import Object
from pinnace.common import auth, kinds
from services.store import authz
from services.store import encoding as enc
from services.store.limits import Limits, audit_refusal, decoder
from services.store.listing import decode_continue, encode_continue, kind_range, make_matcher
from services.store.mvcc import Compacted, FutureRevision, KeyValue, MVCCStore
from services.store.namespaces import NamespaceLifecycle
from services.store.packing import ProposalPacker
from services.store.registry import strategy
from services.store.registry.allocators import ClusterIPAllocator, NodePortAllocator
from services.store.registry.errors import StoreError, already_exists, conflict, invalid, not_found
from services.store.registry.service_alloc import AllocPlan, ServiceAllocator, taken_error
from services.store.replication import Replicator, Unavailable
from services.store.watch import BOOKMARK_INTERVAL, HubEvent, WatchClosed, WatchHub

SERVICE_NAME = "pinnace.v1.Store"
BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-node-lease", "pinnace-system")
MAX_RETRIES = 16
MAX_BATCH_OPS = 1000
LIST_CHUNK = 2000

T = TypeVar("T")


def _what(info: kinds.KindInfo, name: str) -> str:
    return f'{info.plural} "{name}"'


def _kind_info(kind: str) -> kinds.KindInfo:
    try:
        return kinds.by_key(kind)
    except kinds.UnknownKind:
        try:
            return kinds.lookup(kind)
        except kinds.UnknownKind as e:
            raise invalid("kind", str(e)) from None


class StoreService:
    """Implements every Store RPC; register with `add_to_server`."""

    def __init__(
        self,
        store: MVCCStore,
        replicator: Replicator,
        hub: WatchHub,
        service_cidr: str = "10.96.0.0/16",
        node_port_range: str = "30000-32767",
        bookmark_interval: float = BOOKMARK_INTERVAL,
        authorize: bool = False,
        limits: Limits | None = None,
    ) -> None:
        self.authorize = authorize
        self.limits = limits or Limits()
        self.store = store
        self.replicator = replicator
        self.packer = ProposalPacker(replicator.propose)  # a Batch's txns replicate as one command
        self.hub = hub
        self.services = ServiceAllocator(
            ClusterIPAllocator(store, service_cidr), NodePortAllocator(store, node_port_range)
        )
        self.bookmark_interval = bookmark_interval
        self.namespaces = NamespaceLifecycle(store)
        self._read_pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="list")
        # Batch ops by their oneof field name (built once: _batch_op runs per op)
        self._batch_calls: dict[str, Callable[[Any, Any], Awaitable[bytes]]] = {
            "create": self.create,
            "update": self.update,
            "update_status": self.update_status,
            "delete": self.delete,
        }

    def start(self) -> None:
        """Background work: emptying terminating namespaces (on the leader)."""
        self.namespaces.start(self)

    async def stop(self) -> None:
        await self.namespaces.stop()

    def close(self) -> None:
        self._read_pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ helpers

    async def _propose(self, txn: enc.Txn) -> enc.Result:
        res = enc.decode_result(await self.packer.propose(enc.encode_txn(txn)))
        if not res.ok and res.error:
            raise StoreError(grpc.StatusCode.INTERNAL, f"store apply failed: {res.error}")
        return res

    async def _current(self, info: kinds.KindInfo, namespace: str, name: str) -> tuple[str, KeyValue, Object]:
        """The stored object; a replica that does not have it catches up (read barrier) before NOT_FOUND."""
        key = kinds.object_key(info, namespace, name)
        kv = self.store.get(key)
        if kv is None:
            await self.replicator.read_barrier()
            kv = self.store.get(key)
            if kv is None:
                raise not_found(_what(info, name))
        return key, kv, Object.FromString(kv.value)

    def _check(
        self,
        context: Any,
        verb: str,
        kind: str,
        namespace: str = "",
        name: str = "",
        current: Object | None = None,
        proposed: Object | None = None,
    ) -> None:
        """PERMISSION_DENIED unless the caller's certificate identity may do this (TLS only)."""
        if not self.authorize or context is None:
            return
        req = authz.Request(auth.caller(context), verb, kind, namespace, name, current, proposed)
        reason = authz.check(req)
        if reason:
            audit_refusal(context, grpc.StatusCode.PERMISSION_DENIED, reason, verb=verb, kind=kind)
            raise StoreError(grpc.StatusCode.PERMISSION_DENIED, reason)

    def _ns_name(self, info: kinds.KindInfo, namespace: str) -> str:
        if info.namespaced:
            return namespace or "default"
        return ""

    # ------------------------------------------------------------------ create

    async def create(self, req: store_pb2.CreateRequest, context: Any = None) -> bytes:
        obj = req.object
        if obj.WhichOneof("kind") is None:
            raise invalid("object", "Required value: set exactly one kind")
        return await self.create_object(obj, dry_run=req.dry_run, context=context)

    async def create_object(self, obj: Object, dry_run: bool = False, context: Any = None) -> bytes:
        """Create `obj` (prepared in place: the caller's message changes)."""
        info = kinds.kind_of(obj)
        generated = not kinds.meta(obj).name and bool(kinds.meta(obj).generate_name)
        template: Object | None = None
        if generated or info.key == "service":  # only these try again, each time from the original
            template = Object()
            template.CopyFrom(obj)
        for _attempt in range(MAX_RETRIES):
            if template is not None:
                obj = Object()
                obj.CopyFrom(template)
            strategy.prepare_create(obj)
            m = kinds.meta(obj)
            key = kinds.object_key(info, m.namespace, m.name)
            self._check(context, "create", info.key, m.namespace, m.name, proposed=obj)
            if info.namespaced:
                self.namespaces.check_create(m.namespace)
            compares = [enc.Compare(key, enc.CMP_NOT_EXISTS)]
            ns_key = ""
            if info.namespaced:
                ns_key = kinds.object_key(kinds.by_key("namespace"), "", m.namespace)
                compares.append(enc.Compare(ns_key, enc.CMP_EXISTS))
            plan = AllocPlan()
            if info.key == "service":
                await self.replicator.read_barrier()  # a stale replica must not claim "exists"
                if self.store.get_value(key) is not None:
                    raise already_exists(_what(info, m.name))
                plan = self.services.plan(obj, None, key)
            try:
                value = obj.SerializeToString()
                if dry_run:
                    if self.store.get_value(key) is not None:
                        raise already_exists(_what(info, m.name))
                    if ns_key and self.store.get_value(ns_key) is None:
                        raise not_found(f'namespaces "{m.namespace}"')
                    return value
                ops = [enc.Op(enc.OP_PUT, key, value), *plan.ops]
                res = await self._propose(enc.Txn([*compares, *plan.compares], ops))
            finally:
                self.services.release(plan)
            if res.ok:
                return enc.with_rv(value, res.revision)
            if res.failed_index == 0:
                if generated:
                    continue
                raise already_exists(_what(info, m.name))
            if ns_key and res.failed_index == 1:
                raise not_found(f'namespaces "{m.namespace}"')
            failed = plan.compares[res.failed_index - len(compares)].key
            if plan.requested.get(failed):
                raise taken_error(
                    "spec.clusterIP" if "/serviceips/" in failed else "nodePort", failed.rsplit("/", 1)[-1]
                )
            # a concurrently allocated address: catch up, then pick again
            await self.replicator.read_barrier()
        raise StoreError(grpc.StatusCode.UNAVAILABLE, "too many conflicting concurrent writes; retry")

    # ------------------------------------------------------------------ reads

    async def get(self, req: store_pb2.GetRequest, context: Any = None) -> bytes:
        info = _kind_info(req.kind)
        if not req.name:
            raise invalid("name", "Required value")
        if not req.serializable:
            await self.replicator.read_barrier()
        key = kinds.object_key(info, self._ns_name(info, req.namespace), req.name)
        value = self.store.get_value(key)
        if value is None:
            raise not_found(_what(info, req.name))
        return value

    async def list_(self, req: store_pb2.ListRequest, context: Any = None) -> bytes:
        info = _kind_info(req.kind)
        match = make_matcher(info, req.label_selector, req.field_selector)
        if not req.serializable:
            await self.replicator.read_barrier()
        start, end = kind_range(info, req.namespace if info.namespaced else "")
        revision = req.revision
        if req.continue_token:
            revision, last = decode_continue(req.continue_token)
            start = last + "\x00"
        limit = max(0, req.limit)
        loop = asyncio.get_running_loop()
        try:
            if limit == 0 or limit > 500:
                return await loop.run_in_executor(self._read_pool, self._list_sync, start, end, revision, limit, match)
            return self._list_sync(start, end, revision, limit, match)
        except Compacted as e:
            raise StoreError(
                grpc.StatusCode.OUT_OF_RANGE,
                f"the list revision has been compacted (oldest available {e.compact_revision}); "
                "restart the list without a continue token",
            ) from None
        except FutureRevision as e:
            raise StoreError(grpc.StatusCode.OUT_OF_RANGE, str(e)) from None

    def _list_sync(
        self,
        start: str,
        end: str,
        revision: int,
        limit: int,
        match: Callable[[Object], bool] | None,
    ) -> bytes:
        if match is None and limit == 0:  # the common full list: values only, framed as they come
            values, served, _ = self.store.range(start, end, 0, revision, values_only=True)
            return enc.list_response_bytes(values, served, "", 0)
        items: list[bytes] = []
        last_key = ""
        more = False
        served = revision
        cursor = start
        while True:
            chunk = limit - len(items) if match is None and limit else (max(limit, LIST_CHUNK) if limit else 0)
            rows, served, more = self.store.range(cursor, end, chunk, served)
            stopped_early = False
            for i, (key, value) in enumerate(rows):
                if match is None or match(Object.FromString(value)):
                    items.append(value)
                    last_key = key
                    if limit and len(items) >= limit:
                        stopped_early = i < len(rows) - 1
                        break
            if limit and len(items) >= limit:
                more = more or stopped_early
                break
            if not more or not rows:
                more = False
                break
            cursor = rows[-1][0] + "\x00"
            last_key = rows[-1][0]
        token = ""
        remaining = 0
        if more and last_key:
            token = encode_continue(served, last_key)
            if match is None:
                remaining = self.store.count(last_key + "\x00", end)
        return enc.list_response_bytes(items, served, token, remaining)

    # ------------------------------------------------------------------ update

    async def update(self, req: store_pb2.UpdateRequest, context: Any = None) -> bytes:
        return await self._update(req, False, context)

    async def update_status(self, req: store_pb2.UpdateRequest, context: Any = None) -> bytes:
        return await self._update(req, True, context)

    async def _update(self, req: store_pb2.UpdateRequest, status: bool, context: Any) -> bytes:
        obj = req.object
        if obj.WhichOneof("kind") is None:
            raise invalid("object", "Required value: set exactly one kind")
        info = kinds.kind_of(obj)
        m = kinds.meta(obj)
        if not m.name:
            raise invalid("metadata.name", "Required value")
        ns = self._ns_name(info, m.namespace)
        m.namespace = ns
        want_rv = m.resource_version
        if want_rv and not want_rv.isdigit():
            raise invalid("metadata.resourceVersion", f"Invalid value: {want_rv!r}: must be a revision number")
        caught_up = False
        for _attempt in range(MAX_RETRIES):
            key, kv, old = await self._current(info, ns, m.name)
            if want_rv and int(want_rv) != kv.mod_revision:
                if not caught_up:  # this replica may lag behind what the client saw
                    await self.replicator.read_barrier()
                    caught_up = True
                    continue
                raise conflict(_what(info, m.name))
            if m.uid and m.uid != kinds.meta(old).uid:
                if not caught_up:
                    await self.replicator.read_barrier()
                    caught_up = True
                    continue
                raise StoreError(
                    grpc.StatusCode.ABORTED,
                    f"Precondition failed: UID in precondition: {m.uid}, UID in object meta: {kinds.meta(old).uid}",
                )
            if status:
                new = strategy.prepare_update_status(old, obj)
            else:
                new = Object()
                new.CopyFrom(obj)
                strategy.prepare_update(old, new)
            self._check(context, "update_status" if status else "update", info.key, ns, m.name, old, new)
            nm = kinds.meta(new)
            old_clean = Object()
            old_clean.CopyFrom(old)
            kinds.meta(old_clean).resource_version = ""
            value = new.SerializeToString(deterministic=True)
            if value == old_clean.SerializeToString(deterministic=True):
                return kv.value  # nothing changed: no new revision
            plan = AllocPlan()
            ops: list[enc.Op]
            finishing = (
                not status
                and nm.HasField("deletion_timestamp")
                and not nm.finalizers
                and not nm.deletion_grace_period_seconds
            )
            if finishing:  # the last finalizer went away: the object goes now
                ops = [enc.Op(enc.OP_DELETE, key), *self._release_ops(old)]
            else:
                if info.key == "service" and not status:
                    plan = self.services.plan(new, old, key)
                    value = new.SerializeToString(deterministic=True)
                ops = [enc.Op(enc.OP_PUT, key, value), *plan.ops]
            if req.dry_run:
                self.services.release(plan)
                return value
            try:
                res = await self._propose(
                    enc.Txn([enc.Compare(key, enc.CMP_MOD, kv.mod_revision), *plan.compares], ops)
                )
            finally:
                self.services.release(plan)
            if res.ok:
                return enc.with_rv(kv.value if finishing else value, res.revision)
            if res.failed_index == 0:
                if want_rv:
                    raise conflict(_what(info, m.name))
                await self.replicator.read_barrier()
                continue
            failed = plan.compares[res.failed_index - 1].key
            if plan.requested.get(failed):
                raise taken_error(
                    "spec.clusterIP" if "/serviceips/" in failed else "nodePort", failed.rsplit("/", 1)[-1]
                )
        raise StoreError(grpc.StatusCode.UNAVAILABLE, "too many conflicting concurrent writes; retry")

    def _release_ops(self, obj: Object) -> list[enc.Op]:
        return [enc.Op(enc.OP_DELETE, k) for k in sorted(self.services.keys_of(obj))]

    # ------------------------------------------------------------------ delete

    async def delete(self, req: store_pb2.DeleteRequest, context: Any = None) -> bytes:
        info = _kind_info(req.kind)
        if not req.name:
            raise invalid("name", "Required value")
        ns = self._ns_name(info, req.namespace)
        pre = req.preconditions
        grace = req.grace_period_seconds if req.HasField("grace_period_seconds") else None
        caught_up = False
        for _attempt in range(MAX_RETRIES):
            key, kv, obj = await self._current(info, ns, req.name)
            m = kinds.meta(obj)
            self._check(context, "delete", info.key, ns, req.name, current=obj)
            stale = (pre.uid and pre.uid != m.uid) or (
                pre.resource_version and pre.resource_version != str(kv.mod_revision)
            )
            if stale and not caught_up:  # maybe only this replica is behind
                await self.replicator.read_barrier()
                caught_up = True
                continue
            if pre.uid and pre.uid != m.uid:
                raise StoreError(
                    grpc.StatusCode.ABORTED,
                    f"Precondition failed: UID in precondition: {pre.uid}, UID in object meta: {m.uid}",
                )
            if pre.resource_version and pre.resource_version != str(kv.mod_revision):
                raise StoreError(
                    grpc.StatusCode.ABORTED,
                    f"Precondition failed: ResourceVersion in precondition: {pre.resource_version}, "
                    f"ResourceVersion in object meta: {kv.mod_revision}",
                )
            if info.key == "namespace":
                self.namespaces.check_delete(req.name)
                plan = self.namespaces.mark_terminating(obj)
                if plan is None:
                    return kv.value
            else:
                plan = strategy.plan_delete(obj, grace, req.propagation_policy)
            if plan is obj:
                return kv.value
            if req.dry_run:
                return kv.value if plan is None else plan.SerializeToString()
            cmp = enc.Compare(key, enc.CMP_MOD, kv.mod_revision)
            if plan is None:
                value = kv.value
                txn = enc.Txn([cmp], [enc.Op(enc.OP_DELETE, key), *self._release_ops(obj)])
            else:
                value = plan.SerializeToString()
                txn = enc.Txn([cmp], [enc.Op(enc.OP_PUT, key, value)])
            res = await self._propose(txn)
            if res.ok:
                return enc.with_rv(value, res.revision)
            if pre.resource_version:
                raise conflict(_what(info, req.name))
            await self.replicator.read_barrier()
        raise StoreError(grpc.StatusCode.UNAVAILABLE, "too many conflicting concurrent writes; retry")

    async def finish_namespace(self, name: str) -> None:
        """Remove an emptied terminating namespace."""
        key = kinds.object_key(kinds.by_key("namespace"), "", name)
        kv = self.store.get(key)
        if kv is None or not Object.FromString(kv.value).namespace.metadata.HasField("deletion_timestamp"):
            return
        await self._propose(enc.Txn([enc.Compare(key, enc.CMP_MOD, kv.mod_revision)], [enc.Op(enc.OP_DELETE, key)]))

    # ------------------------------------------------------------------ batch

    async def batch(self, req: store_pb2.BatchRequest, context: Any = None) -> bytes:
        """Each op exactly as its own call; BatchResponse bytes with the results in op order."""
        if len(req.ops) > MAX_BATCH_OPS:
            raise invalid("ops", f"Too many: {len(req.ops)}: must have at most {MAX_BATCH_OPS} items")
        results = await asyncio.gather(*(self._batch_op(op, context) for op in req.ops))
        return b"".join(results)

    async def _batch_op(self, op: store_pb2.BatchOp, context: Any) -> bytes:
        try:
            which = op.WhichOneof("op")
            if which is None:
                raise invalid("op", "Required value: set one of create, update, update_status, delete")
            req = getattr(op, which)
            self.limits.admit(context, req)
            return enc.batch_result_ok(await self._batch_calls[which](req, context))
        except StoreError as e:
            return enc.batch_result_error(e.code.value[0], e.message)
        except Unavailable as e:
            return enc.batch_result_error(grpc.StatusCode.UNAVAILABLE.value[0], str(e) or "no leader; retry")

    # ------------------------------------------------------------------ watch

    def open_watch(self, req: store_pb2.WatchRequest, batched: bool = False) -> AsyncIterator[bytes]:
        """Validate a WatchRequest and return its stream of serialized WatchEvents (with `batched`,
        of serialized WatchEventBatches: everything ready at once in one message).

        The stream raises Compacted / WatchClosed; `watch_error` maps them to gRPC errors.
        """
        info = _kind_info(req.kind) if req.kind else None
        if info is None:
            start, end, plural = "/registry/", "/registry0", ""
            match = None
            if req.label_selector or req.field_selector:
                raise invalid("kind", "selectors need a kind")
        else:
            ns = req.namespace if info.namespaced else ""
            if req.name and info.namespaced and not ns:
                ns = "default"
            start, end = kind_range(info, ns, req.name)
            plural = info.plural
            match = make_matcher(info, req.label_selector, req.field_selector)
        if req.from_revision > 0 and req.from_revision < self.store.compact_revision():
            raise _compacted(req.from_revision, self.store.compact_revision())
        select = _selector_events(match) if match is not None else None
        return self.hub.messages(
            plural, start, end, req.from_revision, select, req.bookmarks, self.bookmark_interval, batched=batched
        )

    @staticmethod
    def watch_error(req: store_pb2.WatchRequest, e: Exception) -> StoreError:
        if isinstance(e, Compacted):
            return _compacted(req.from_revision, e.compact_revision)
        if isinstance(e, WatchClosed):
            return StoreError(grpc.StatusCode.UNAVAILABLE, str(e))
        if isinstance(e, StoreError):
            return e
        return StoreError(grpc.StatusCode.UNAVAILABLE, str(e) or "no leader; retry")

    async def watch(self, req: store_pb2.WatchRequest, context: Any = None) -> AsyncIterator[bytes]:
        """The stream as an async generator of bytes (for in-process callers)."""
        try:
            async for data in self.open_watch(req):
                yield data
        except (Compacted, WatchClosed) as e:
            raise self.watch_error(req, e) from None

    # ------------------------------------------------------------------ status / compact

    async def status(self, req: store_pb2.StatusRequest, context: Any = None) -> store_pb2.StatusResponse:
        st = self.replicator.status()
        resp = store_pb2.StatusResponse(
            id=st.id,
            leader_id=st.leader_id,
            term=st.term,
            commit_index=st.commit_index,
            applied_index=st.applied_index,
            revision=self.store.revision(),
            compact_revision=self.store.compact_revision(),
            role=st.role,
            db_size_bytes=self.store.db_size(),
        )
        for mem in st.members:
            resp.members.add(id=mem.id, address=mem.address, match_index=mem.match_index, reachable=mem.reachable)
        return resp

    async def compact(self, req: store_pb2.CompactRequest, context: Any = None) -> store_pb2.CompactResponse:
        if req.revision <= 0:
            raise invalid("revision", "Invalid value: must be > 0")
        self._check(context, "compact", "")
        res = enc.decode_result(await self.replicator.propose(enc.encode_compact(req.revision)))
        return store_pb2.CompactResponse(compact_revision=res.revision)

    # ------------------------------------------------------------------ bootstrap

    async def bootstrap(self) -> None:
        """Create the well-known namespaces (idempotent; retried until there is a leader)."""
        ns_info = kinds.by_key("namespace")
        for name in BOOTSTRAP_NAMESPACES:
            while True:
                try:
                    await self.replicator.read_barrier()
                    if self.store.get_value(kinds.object_key(ns_info, "", name)) is None:
                        obj = Object()
                        obj.namespace.metadata.name = name
                        await self.create_object(obj)
                    break
                except StoreError as e:
                    if e.code == grpc.StatusCode.ALREADY_EXISTS:
                        break
                    if e.code != grpc.StatusCode.UNAVAILABLE:
                        raise
                except Unavailable:
                    pass
                await asyncio.sleep(0.2)


def _compacted(from_revision: int, compact: int) -> StoreError:
    return StoreError(
        grpc.StatusCode.OUT_OF_RANGE,
        f"watch from revision {from_revision}: required revision has been compacted "
        f"(oldest available {compact}); relist and watch from the list's revision",
    )


def _selector_events(match: Callable[[Object], bool]) -> Callable[[HubEvent], int]:
    """Event type for a filtered watcher: objects entering the selection are ADDED, leaving DELETED."""

    def select(he: HubEvent) -> int:
        t = he.ev.type
        if t == enc.ADDED:
            new = he.obj()
            return enc.ADDED if new is not None and match(new) else 0
        prev = he.prev_obj()
        was = prev is not None and match(prev)
        if t == enc.DELETED:
            return enc.DELETED if was else 0
        new = he.obj()
        now = new is not None and match(new)
        if now and was:
            return enc.MODIFIED
        if now:
            return enc.ADDED
        return enc.DELETED if was else 0

    return select


# ---------------------------------------------------------------------- gRPC plumbing


def _serialize(resp: Any) -> bytes:
    return resp if isinstance(resp, bytes) else bytes(resp.SerializeToString())


async def _abort(context: grpc.aio.ServicerContext, e: Exception) -> None:
    if isinstance(e, StoreError):
        await context.abort(e.code, e.message)
    if isinstance(e, Unavailable):
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(e) or "no leader; retry")
    raise e


def _unary(
    fn: Callable[[Any, Any], Awaitable[T]], limits: Limits, rate: bool = True
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[T]]:
    """A handler that admits the call (rate: one token; a Batch takes one per op instead)."""

    async def handler(req: Any, context: grpc.aio.ServicerContext) -> T:
        try:
            limits.admit(context, req, rate)
            return await limits.bounded(context, fn(req, context))
        except (StoreError, Unavailable) as e:
            await _abort(context, e)
            raise

    return handler


def _watch_handler(
    svc: StoreService, batched: bool = False
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[None]]:
    """Watch (or WatchBatches) as a writer coroutine: one generator layer between the hub and gRPC."""

    async def handler(req: store_pb2.WatchRequest, context: grpc.aio.ServicerContext) -> None:
        try:
            svc.limits.admit(context, req)
            with svc.limits.watcher(context):
                write = context.write
                async for data in svc.open_watch(req, batched):
                    await write(data)
        except (StoreError, Unavailable, Compacted, WatchClosed) as e:
            err = svc.watch_error(req, e)
            await context.abort(err.code, err.message)

    return handler


def add_to_server(svc: StoreService, server: grpc.aio.Server) -> None:
    """Register the Store service (with raw-bytes responses) on a grpc.aio server."""

    def unary(fn: Any, req_cls: Any, rate: bool = True) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            _unary(fn, svc.limits, rate), request_deserializer=decoder(req_cls), response_serializer=_serialize
        )

    handlers = {
        "Create": unary(svc.create, store_pb2.CreateRequest),
        "Batch": unary(svc.batch, store_pb2.BatchRequest, rate=False),
        "Get": unary(svc.get, store_pb2.GetRequest),
        "List": unary(svc.list_, store_pb2.ListRequest),
        "Update": unary(svc.update, store_pb2.UpdateRequest),
        "UpdateStatus": unary(svc.update_status, store_pb2.UpdateRequest),
        "Delete": unary(svc.delete, store_pb2.DeleteRequest),
        "Status": unary(svc.status, store_pb2.StatusRequest),
        "Compact": unary(svc.compact, store_pb2.CompactRequest),
        "Watch": grpc.unary_stream_rpc_method_handler(
            _watch_handler(svc),
            request_deserializer=decoder(store_pb2.WatchRequest),
            response_serializer=_serialize,
        ),
        "WatchBatches": grpc.unary_stream_rpc_method_handler(
            _watch_handler(svc, batched=True),
            request_deserializer=decoder(store_pb2.WatchRequest),
            response_serializer=_serialize,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
