"""The garbage collector: ownerReferences drive deletion.

- Background: an object all of whose owners are gone (by uid) is deleted; owners that are gone are
  dropped from an object that still has others. Absence is confirmed with a live read before acting.
- Foreground: an owner deleted with propagationPolicy=Foreground carries the foregroundDeletion
  finalizer; its dependents are deleted (foreground too), and the finalizer is removed when none is left.
- Orphan: an owner carrying the orphan finalizer has its dependents' references to it removed, then
  the finalizer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from google.protobuf.message import Message

from pinnace.api import apps_pb2, pod_pb2, service_pb2, storage_pb2
from pinnace.client import Informer, errors
from pinnace.common import kinds
from services.controllers.base import Controller

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
TRACKED: tuple[type[Message], ...] = (
    pod_pb2.Pod,
    apps_pb2.ReplicaSet,
    apps_pb2.Deployment,
    service_pb2.Service,
    service_pb2.Endpoints,
    storage_pb2.PersistentVolumeClaim,
)

Item = tuple[str, str]  # (kind key, cache key)


def _cache_key(obj: Any) -> str:
    m = obj.metadata
    return f"{m.namespace}/{m.name}" if m.namespace else m.name


def _copy(obj: Any) -> Any:
    out = type(obj)()
    out.CopyFrom(obj)
    return out


class GarbageCollector(Controller):
    name = "garbagecollector"
    workers = 4

    def setup(self) -> None:
        self.by_kind: dict[str, Informer[Any]] = {}
        self.uids: dict[str, Item] = {}
        self.dependents: dict[str, set[Item]] = {}
        self._refs: dict[Item, tuple[str, ...]] = {}
        for kind in TRACKED:
            info = kinds.of_message(kind)
            inf = self.informers.get(kind)
            self.by_kind[info.key] = inf
            inf.add_handler(
                on_add=lambda o, k=info.key: self._seen(k, o),
                on_update=lambda _o, n, k=info.key: self._seen(k, n),
                on_delete=lambda o, k=info.key: self._gone(k, o),
            )

    def keys(self) -> Iterable[Any]:
        for key, inf in self.by_kind.items():
            for obj in inf.list():
                if obj.metadata.owner_references or obj.metadata.HasField("deletion_timestamp"):
                    yield (key, _cache_key(obj))

    # ---- graph maintenance (handlers) -----------------------------------------------------------
    def _seen(self, kind: str, obj: Any) -> None:
        item = (kind, _cache_key(obj))
        m = obj.metadata
        self.uids[m.uid] = item
        refs = tuple(r.uid for r in m.owner_references)
        old = self._refs.get(item, ())
        if refs != old:
            for uid in old:
                self.dependents.get(uid, set()).discard(item)
            for uid in refs:
                self.dependents.setdefault(uid, set()).add(item)
            self._refs[item] = refs
        if refs or (m.HasField("deletion_timestamp") and (FOREGROUND in m.finalizers or ORPHAN in m.finalizers)):
            self.enqueue(item)
        for ref in m.owner_references:
            owner = self.uids.get(ref.uid)
            if owner is not None and m.HasField("deletion_timestamp"):
                self.enqueue(owner)  # a foreground owner may be waiting for this one

    def _gone(self, kind: str, obj: Any) -> None:
        item = (kind, _cache_key(obj))
        m = obj.metadata
        if self.uids.get(m.uid) == item:
            del self.uids[m.uid]
        for uid in self._refs.pop(item, ()):
            deps = self.dependents.get(uid)
            if deps is not None:
                deps.discard(item)
            owner = self.uids.get(uid)
            if owner is not None:
                self.enqueue(owner)  # a foreground owner may be done now
        for dep in self.dependents.get(m.uid, set()):
            self.enqueue(dep)

    # ---- reconcile ------------------------------------------------------------------------------
    async def reconcile(self, item: Item) -> float | None:
        kind, key = item
        inf = self.by_kind.get(kind)
        obj = inf.get(key) if inf is not None else None
        if obj is None:
            return None
        m = obj.metadata
        if m.HasField("deletion_timestamp"):
            if ORPHAN in m.finalizers:
                await self._orphan(kind, obj)
                return None
            if FOREGROUND in m.finalizers:
                return await self._foreground(kind, obj)
        if m.owner_references:
            await self._check_owners(kind, obj)
        return None

    async def _owner_exists(self, ref: Any, namespace: str) -> bool:
        if ref.uid in self.uids:
            return True
        try:
            info = kinds.lookup(ref.kind)
        except kinds.UnknownKind:
            return True  # not ours to judge
        ns = namespace if info.namespaced else ""
        try:
            live = await self.client.get(info.message, ref.name, ns)
        except errors.NotFound:
            return False
        return bool(kinds.meta(live).uid == ref.uid)

    async def _check_owners(self, kind: str, obj: Any) -> None:
        m = obj.metadata
        absent = [r.uid for r in m.owner_references if not await self._owner_exists(r, m.namespace)]
        if not absent:
            return
        info = kinds.by_key(kind)
        if len(absent) == len(m.owner_references):
            if m.HasField("deletion_timestamp"):
                return
            with contextlib.suppress(errors.NotFound):
                await self.client.delete(info.message, m.name, m.namespace or None, uid=m.uid)
            return
        new = _copy(obj)
        keep = [r for r in new.metadata.owner_references if r.uid not in absent]
        del new.metadata.owner_references[:]
        new.metadata.owner_references.extend(keep)
        with contextlib.suppress(errors.NotFound):
            await self.client.update(new)

    def _deps(self, uid: str) -> list[tuple[str, Any]]:
        out = []
        for kind, key in list(self.dependents.get(uid, ())):
            inf = self.by_kind.get(kind)
            dep = inf.get(key) if inf is not None else None
            if dep is not None and any(r.uid == uid for r in dep.metadata.owner_references):
                out.append((kind, dep))
        return out

    async def _remove_finalizer(self, obj: Any, name: str) -> None:
        new = _copy(obj)
        keep = [f for f in new.metadata.finalizers if f != name]
        del new.metadata.finalizers[:]
        new.metadata.finalizers.extend(keep)
        with contextlib.suppress(errors.NotFound):
            await self.client.update(new)

    async def _orphan(self, kind: str, obj: Any) -> None:
        uid = obj.metadata.uid
        for _k, dep in self._deps(uid):
            new = _copy(dep)
            keep = [r for r in new.metadata.owner_references if r.uid != uid]
            del new.metadata.owner_references[:]
            new.metadata.owner_references.extend(keep)
            with contextlib.suppress(errors.NotFound):
                await self.client.update(new)
        await self._remove_finalizer(obj, ORPHAN)

    async def _foreground(self, kind: str, obj: Any) -> float | None:
        uid = obj.metadata.uid
        deps = self._deps(uid)
        for dkind, dep in deps:
            if dep.metadata.HasField("deletion_timestamp"):
                continue
            info = kinds.by_key(dkind)
            dm = dep.metadata
            policy = "Foreground" if self.dependents.get(dm.uid) else ""
            with contextlib.suppress(errors.NotFound):
                await self.client.delete(info.message, dm.name, dm.namespace or None, propagation_policy=policy)
        if deps:
            return 1.0  # look again; dependents' deletions also enqueue us
        await self._remove_finalizer(obj, FOREGROUND)
        return None
