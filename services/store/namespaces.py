"""Namespace lifecycle: deleting a Namespace marks it Terminating, deletes everything in it, then
removes it (Kubernetes' namespace controller, built into the store). New objects may not be
created in a terminating namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import grpc

from pinnace.api import store_pb2
from pinnace.api.object_pb2 import Object
from pinnace.common import kinds, logging
from services.store.mvcc import REGISTRY_PREFIX, Event, MVCCStore
from services.store.registry.errors import StoreError
from services.store.registry.strategy import now_ts
from services.store.replication import Unavailable

if TYPE_CHECKING:
    from services.store.server import StoreService

NS_PREFIX = f"{REGISTRY_PREFIX}namespaces/"
PROTECTED = frozenset({"default", "kube-system", "kube-node-lease", "pinnace-system"})
FINALIZER = "kubernetes"
log = logging.get_logger("store.namespaces")


class NamespaceLifecycle:
    """Tracks terminating namespaces (from applied events) and empties them in the background."""

    def __init__(self, store: MVCCStore) -> None:
        self.store = store
        self.terminating: set[str] = set()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.reload()
        store.listeners.append(self._on_events)
        store.reset_listeners.append(self.reload)

    def reload(self) -> None:
        term = set()
        for key, value in self.store.keys_with_prefix(NS_PREFIX):
            if Object.FromString(value).namespace.metadata.HasField("deletion_timestamp"):
                term.add(key[len(NS_PREFIX) :])
        self.terminating = term

    def _on_events(self, events: list[Event]) -> None:
        changed = False
        for ev in events:
            if not ev.key.startswith(NS_PREFIX):
                continue
            name = ev.key[len(NS_PREFIX) :]
            if ev.value is not None and Object.FromString(ev.value).namespace.metadata.HasField("deletion_timestamp"):
                self.terminating.add(name)
                changed = True
            else:
                self.terminating.discard(name)
        if changed and self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def check_create(self, namespace: str) -> None:
        if namespace in self.terminating:
            raise StoreError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    @staticmethod
    def check_delete(name: str) -> None:
        if name in PROTECTED:
            raise StoreError(
                grpc.StatusCode.PERMISSION_DENIED, f'namespace "{name}" is protected and may not be deleted'
            )

    @staticmethod
    def mark_terminating(obj: Object) -> Object | None:
        """The namespace as stored once its deletion starts, or None when it is terminating already."""
        m = obj.namespace.metadata
        if m.HasField("deletion_timestamp"):
            return None
        out = Object()
        out.CopyFrom(obj)
        out.namespace.metadata.deletion_timestamp.CopyFrom(now_ts())
        out.namespace.metadata.deletion_grace_period_seconds = 0
        out.namespace.metadata.resource_version = ""
        out.namespace.status.phase = "Terminating"
        if FINALIZER not in out.namespace.spec.finalizers:
            out.namespace.spec.finalizers.append(FINALIZER)
        return out

    # ------------------------------------------------------------------ background finalizer

    def start(self, service: StoreService) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(service), name="namespace-lifecycle")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self, service: StoreService) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=2.0)
            self._wake.clear()
            if not self.terminating or service.replicator.status().role != "leader":
                continue
            for name in sorted(self.terminating):
                try:
                    await self._finalize(service, name)
                except (StoreError, Unavailable) as e:
                    log.info("namespace cleanup will retry", namespace=name, error=str(e))
                except Exception:
                    log.exception("namespace cleanup failed", namespace=name)

    async def _finalize(self, service: StoreService, name: str) -> None:
        remaining = 0
        for info in kinds.KINDS:
            if not info.namespaced:
                continue
            prefix = f"{REGISTRY_PREFIX}{info.plural}/{name}/"
            for key, value in self.store.keys_with_prefix(prefix):
                remaining += 1
                if kinds.meta(Object.FromString(value)).HasField("deletion_timestamp"):
                    continue  # being deleted (finalizers or a pod's grace period)
                req = store_pb2.DeleteRequest(kind=info.key, namespace=name, name=key[len(prefix) :])
                try:
                    await service.delete(req)
                except StoreError as e:
                    if e.code != grpc.StatusCode.NOT_FOUND:
                        raise
        if remaining:
            self._wake_later()
            return
        await service.finish_namespace(name)

    def _wake_later(self) -> None:
        if self._loop is not None and self._wake is not None:
            self._loop.call_later(1.0, self._wake.set)
