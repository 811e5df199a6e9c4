"""Informer: a local, indexed, eventually consistent cache of one kind, kept fresh by list + watch.

Lifecycle (client-go's reflector + indexer + shared informer):

1. List (page by page, at one revision) and replace the cache, telling handlers what changed.
2. Watch from that revision (with bookmarks), applying each event to the cache and the handlers.
3. If the stream breaks (replica restart, network), watch again from the last revision seen, on
   any replica, with backoff. If that revision was compacted (errors.Gone / OUT_OF_RANGE), relist;
   objects that vanished meanwhile are reported as deletes. The loop never stops by itself.
   A watch that stays silent (no event and no bookmark) for ``watch_idle_timeout`` seconds is
   restarted the same way, so a hung replica or a half-open connection cannot stall it.
4. Every ``resync_period`` seconds (0 = never) each cached object is re-delivered as on_update(obj, obj).

Cached objects are shared: treat them as read-only (``copy = type(obj)(); copy.CopyFrom(obj)``).
Indexes: ``namespace`` and ``label`` ("key=value", built on first use) are built in; add more
with ``add_index``. A list is fetched page by page, the next page while the current one is applied.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from pinnace.client import errors
from pinnace.client.aio import AsyncClient, kind_info
from pinnace.client.retry import Backoff
from pinnace.client.types import BOOKMARK, DELETED, ListResult, WatchEvent
from pinnace.common import kinds
from pinnace.common.selectors import parse_label_selector

M = TypeVar("M", bound=Message)

NAMESPACE_INDEX = "namespace"
LABEL_INDEX = "label"

log = logging.getLogger("pinnace.client.informer")

Handler = Callable[..., Any]


def _meta_key(obj: Any) -> str:
    m = obj.metadata
    return f"{m.namespace}/{m.name}" if m.namespace else m.name


def _namespace_index(obj: Any) -> list[str]:
    return [obj.metadata.namespace]


def _label_index(obj: Any) -> list[str]:
    return [f"{k}={v}" for k, v in obj.metadata.labels.items()]


class _Handlers:
    __slots__ = ("on_add", "on_delete", "on_update")

    def __init__(self, on_add: Handler | None, on_update: Handler | None, on_delete: Handler | None) -> None:
        self.on_add = on_add
        self.on_update = on_update
        self.on_delete = on_delete


class Informer(Generic[M]):
    """See the module docstring. ``client`` is an AsyncClient (a sync Client's endpoints are reused)."""

    def __init__(
        self,
        client: Any,
        kind: type[M],
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        resync_period: float = 0,
        *,
        page_size: int = 2000,
        name: str = "",
        watch_idle_timeout: float = 30.0,
    ) -> None:
        if not isinstance(client, AsyncClient):
            aio = getattr(client, "aio", None)
            if not isinstance(aio, AsyncClient):
                raise TypeError("Informer needs a pinnace.client.AsyncClient")
            client = AsyncClient(aio.endpoints, aio.tls, timeout=aio.timeout, retry_timeout=aio.retry_timeout)
        self.client: AsyncClient = client
        self.kind = kind
        self.info = kind_info(kind)
        self.namespace = namespace or ""
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.page_size = page_size
        self.watch_idle_timeout = watch_idle_timeout
        self._watch_task: asyncio.Future[None] | None = None
        self._watchdog_task: asyncio.Task[None] | None = None
        self._last_seen = 0.0
        self.name = name or self.info.plural
        self._selector = parse_label_selector(label_selector)
        self._items: dict[str, M] = {}
        self._indexers: dict[str, Callable[[M], Iterable[str]]] = {NAMESPACE_INDEX: _namespace_index}
        self._indices: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}
        self._index_values: dict[str, dict[str, tuple[str, ...]]] = {NAMESPACE_INDEX: {}}
        # Built on first use (by_index), then kept up to date like the others.
        self._lazy_indexers: dict[str, Callable[[M], Iterable[str]]] = {LABEL_INDEX: _label_index}
        self._handlers: list[_Handlers] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resync_task: asyncio.Task[None] | None = None
        self.revision = 0
        self.relists = 0
        self.watch_restarts = 0
        self.events = 0
        self.last_error: BaseException | None = None

    # -- configuration -----------------------------------------------------------------------

    def add_index(self, name: str, fn: Callable[[M], Iterable[str]], *, lazy: bool = False) -> None:
        """Index cached objects by ``fn(obj)`` (a list of values); query with by_index(name, value).
        A ``lazy`` index is only built (and from then on maintained) when first queried."""
        if lazy:
            self._lazy_indexers[name] = fn
            return
        self._lazy_indexers.pop(name, None)
        self._indexers[name] = fn
        self._indices[name] = {}
        self._index_values[name] = {}
        for key, obj in self._items.items():
            self._index_one(name, fn, key, obj)

    def add_handler(
        self,
        on_add: Handler | None = None,
        on_update: Handler | None = None,
        on_delete: Handler | None = None,
    ) -> None:
        """Register callbacks (sync or async): on_add(obj), on_update(old, new), on_delete(obj).
        A handler added after the first sync gets on_add for every cached object first."""
        h = _Handlers(on_add, on_update, on_delete)
        self._handlers.append(h)
        if self._synced.is_set() and on_add is not None:
            for obj in list(self._items.values()):
                self._call_now(on_add, obj)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listing and watching in the background (returns at once; see wait_synced)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer-{self.name}")
            if self.resync_period > 0:
                self._resync_task = asyncio.create_task(self._resync_loop(), name=f"informer-{self.name}-resync")
            if self.watch_idle_timeout > 0:
                self._watchdog_task = asyncio.create_task(self._watchdog(), name=f"informer-{self.name}-watchdog")

    async def wait_synced(self, timeout: float | None = None) -> bool:
        """Wait for the first full list to be in the cache; False on timeout."""
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def stop(self) -> None:
        for task in (self._task, self._resync_task, self._watchdog_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._resync_task = self._watchdog_task = None

    async def __aenter__(self) -> Informer[M]:
        await self.start()
        await self.wait_synced()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- cache queries -----------------------------------------------------------------------

    def get(self, key: str) -> M | None:
        """The cached object for "namespace/name" (or "name" for cluster-scoped kinds)."""
        return self._items.get(key)

    def get_by_name(self, name: str, namespace: str = "") -> M | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def keys(self) -> builtins.list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def list(self, namespace: str | None = None, label_selector: str = "") -> list[M]:
        """Cached objects, optionally of one namespace and matching a label selector."""
        if namespace:
            keys: Iterable[str] = self._indices[NAMESPACE_INDEX].get(namespace, ())
            items = [self._items[k] for k in keys]
        else:
            items = builtins.list(self._items.values())
        if label_selector:
            sel = parse_label_selector(label_selector)
            items = [o for o in items if sel.matches(o.metadata.labels)]  # type: ignore[attr-defined]
        return items

    def by_index(self, name: str, value: str) -> builtins.list[M]:
        """Cached objects whose index ``name`` includes ``value``."""
        if name in self._lazy_indexers:
            self.add_index(name, self._lazy_indexers[name])
        index = self._indices.get(name)
        if index is None:
            raise KeyError(f"informer {self.name}: no index {name!r}; known: {', '.join(self._indices)}")
        return [self._items[k] for k in index.get(value, ())]

    def index_keys(self, name: str, value: str) -> builtins.list[str]:
        return [self._meta_key_of(o) for o in self.by_index(name, value)]

    @staticmethod
    def _meta_key_of(obj: Any) -> str:
        return _meta_key(obj)

    # -- cache maintenance -------------------------------------------------------------------

    def _index_one(self, name: str, fn: Callable[[M], Iterable[str]], key: str, obj: M) -> None:
        try:
            values = tuple(fn(obj))
        except Exception:
            log.exception("informer %s: index %s failed for %s", self.name, name, key)
            values = ()
        old = self._index_values[name].get(key, ())
        if old == values:
            return
        index = self._indices[name]
        for v in old:
            bucket = index.get(v)
            if bucket is not None:
                bucket.discard(key)
                if not bucket:
                    del index[v]
        for v in values:
            index.setdefault(v, set()).add(key)
        if values:
            self._index_values[name][key] = values
        else:
            self._index_values[name].pop(key, None)

    def _index_new(self, key: str, obj: M) -> None:
        for name, fn in self._indexers.items():
            try:
                values = tuple(fn(obj))
            except Exception:
                log.exception("informer %s: index %s failed for %s", self.name, name, key)
                continue
            if values:
                index = self._indices[name]
                for v in values:
                    bucket = index.get(v)
                    if bucket is None:
                        index[v] = {key}
                    else:
                        bucket.add(key)
                self._index_values[name][key] = values

    def _store(self, key: str, obj: M) -> M | None:
        old = self._items.get(key)
        self._items[key] = obj
        for name, fn in self._indexers.items():
            self._index_one(name, fn, key, obj)
        return old

    def _remove(self, key: str) -> M | None:
        old = self._items.pop(key, None)
        if old is not None:
            for name in self._indexers:
                index = self._indices[name]
                for v in self._index_values[name].pop(key, ()):
                    bucket = index.get(v)
                    if bucket is not None:
                        bucket.discard(key)
                        if not bucket:
                            del index[v]
        return old

    # -- handlers ----------------------------------------------------------------------------

    def _call_now(self, fn: Handler, *args: Any) -> Any:
        try:
            result = fn(*args)
        except Exception:
            log.exception("informer %s: handler %s failed", self.name, getattr(fn, "__name__", fn))
            return None
        return result

    def _dispatch(self, which: str, *args: Any) -> Awaitable[None] | None:
        """Call the handlers at once; returns an awaitable only when some handler returned one."""
        pending: builtins.list[Awaitable[Any]] | None = None
        for h in self._handlers:
            fn = getattr(h, which)
            if fn is None:
                continue
            result = self._call_now(fn, *args)
            if result is not None and inspect.isawaitable(result):
                if pending is None:
                    pending = []
                pending.append(result)
        if pending is None:
            return None
        return self._await_all(pending)

    async def _await_all(self, pending: builtins.list[Awaitable[Any]]) -> None:
        for p in pending:
            try:
                await p
            except Exception:
                log.exception("informer %s: async handler failed", self.name)

    async def _notify(self, which: str, *args: Any) -> None:
        r = self._dispatch(which, *args)
        if r is not None:
            await r

    # -- list and watch ----------------------------------------------------------------------

    async def _relist(self) -> None:
        """List page by page (the next page is fetched while this one is applied), then drop what vanished."""
        t0 = time.monotonic()

        def fetch(token: str) -> asyncio.Future[ListResult[M]]:
            return asyncio.ensure_future(
                self.client.list(
                    self.kind,
                    self.namespace,
                    self.label_selector,
                    self.field_selector,
                    self.page_size,
                    continue_token=token,
                )
            )

        seen: set[str] = set()
        revision = 0
        task: asyncio.Future[ListResult[M]] | None = fetch("")
        try:
            while task is not None:
                page = await task
                task = fetch(page.continue_token) if page.continue_token else None
                if not revision:
                    revision = page.revision
                await self._replace_page(page.items, seen)
        finally:
            if task is not None:
                task.cancel()
        for key in [k for k in self._items if k not in seen]:
            gone = self._remove(key)
            if gone is not None and self._handlers:
                r = self._dispatch("on_delete", gone)
                if r is not None:
                    await r
        self.revision = revision
        self.relists += 1
        log.debug(
            "informer %s: listed %d objects at revision %d in %.2fs",
            self.name,
            len(seen),
            revision,
            time.monotonic() - t0,
        )
        self._synced.set()

    async def _replace_page(self, objs: builtins.list[M], seen: set[str]) -> None:
        items = self._items
        notify = bool(self._handlers)
        for obj in objs:
            key = _meta_key(obj)
            seen.add(key)
            old = items.get(key)
            if old is None:
                items[key] = obj
                self._index_new(key, obj)
                if notify:
                    r = self._dispatch("on_add", obj)
                    if r is not None:
                        await r
                continue
            self._store(key, obj)
            if notify and old.metadata.resource_version != obj.metadata.resource_version:  # type: ignore[attr-defined]
                r = self._dispatch("on_update", old, obj)
                if r is not None:
                    await r

    async def _apply(self, ev: WatchEvent[M]) -> None:
        if ev.revision > self.revision:
            self.revision = ev.revision
        if ev.type == BOOKMARK:
            return
        self.events += 1
        obj = ev.object
        key = _meta_key(obj)
        if ev.type == DELETED or (self._selector.requirements and not self._selector.matches(obj.metadata.labels)):  # type: ignore[attr-defined]
            gone = self._remove(key)
            if gone is not None and self._handlers:
                r = self._dispatch("on_delete", obj if ev.type == DELETED else gone)
                if r is not None:
                    await r
            return
        # Keep a compact copy: the event's message also holds prev_object and would stay alive with it.
        compact = obj.__class__()
        compact.CopyFrom(obj)
        obj = compact
        old = self._store(key, obj)
        if not self._handlers:
            return
        r = self._dispatch("on_add", obj) if old is None else self._dispatch("on_update", old, obj)
        if r is not None:
            await r

    async def _consume_watch(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_seen = loop.time()
        async for ev in self.client.watch(
            self.kind,
            self.namespace,
            self.revision,
            self.label_selector,
            self.field_selector,
            bookmarks=True,
            resume=False,
        ):
            self._last_seen = loop.time()
            await self._apply(ev)

    async def _run(self) -> None:
        backoff = Backoff(base=0.1, cap=5.0)
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                    backoff.reset()
                self._watch_task = asyncio.ensure_future(self._consume_watch())
                try:
                    await self._watch_task
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        self._watch_task.cancel()
                        raise
                    # The watchdog cancelled a watch that went silent (no events, no bookmarks):
                    # that replica may hang, so try the next one.
                    self.client.next_endpoint()
                    self.watch_restarts += 1
                    log.warning(
                        "informer %s: no events or bookmarks for %.0fs; watching again from revision %d",
                        self.name,
                        self.watch_idle_timeout,
                        self.revision,
                    )
                    continue
                finally:
                    self._watch_task = None
                backoff.reset()
                self.watch_restarts += 1
                log.debug("informer %s: watch ended at revision %d; watching again", self.name, self.revision)
            except asyncio.CancelledError:
                raise
            except errors.Gone as exc:
                self.last_error = exc
                need_list = True
                log.info("informer %s: revision %d is compacted; relisting", self.name, self.revision)
            except Exception as exc:
                self.last_error = exc
                self.watch_restarts += 1
                delay = backoff.next()
                log.warning(
                    "informer %s: %s at revision %d; retrying in %.2fs",
                    self.name,
                    exc,
                    self.revision,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _watchdog(self) -> None:
        """Restart a watch that has been silent longer than watch_idle_timeout (the store sends
        bookmarks every few seconds, so silence means a hung replica or a dead connection)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(0.05, self.watch_idle_timeout / 4))
            task = self._watch_task
            if task is not None and not task.done() and loop.time() - self._last_seen > self.watch_idle_timeout:
                self._last_seen = loop.time()
                task.cancel()

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync_period)
            if not self._synced.is_set():
                continue
            for obj in list(self._items.values()):
                await self._notify("on_update", obj, obj)


def meta_namespace_key(obj: Any) -> str:
    """ "namespace/name" or "name": the key informers and work queues use."""
    return kinds.cache_key(obj)


def split_key(key: str) -> tuple[str, str]:
    """ "ns/name" -> ("ns", "name"); "name" -> ("", "name")."""
    ns, _, name = key.rpartition("/")
    return ns, name
