"""Shared informers (one per kind per process) and the Controller base class: a work queue filled by
informer handlers and drained by workers while this process holds the controller's Lease."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import Message
from prometheus_client import Counter

from pinnace.client import AsyncClient, Informer, WorkQueue, run_workers
from pinnace.client.events import EventRecorder
from pinnace.common.logging import get_logger

M = TypeVar("M", bound=Message)
log = get_logger("controllers")
RECONCILES = Counter(
    "pinnace_controller_reconciles_total", "reconciles by controller and result", ["controller", "result"]
)


class SharedInformers:
    """One informer per (kind, namespace) for every controller in the process."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self._informers: dict[tuple[str, str], Informer[Any]] = {}

    def get(self, kind: type[M], namespace: str = "") -> Informer[M]:
        key = (kind.DESCRIPTOR.full_name, namespace)
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(self.client, kind, namespace=namespace or None)
            self._informers[key] = inf
        return inf

    async def start(self) -> None:
        for inf in list(self._informers.values()):
            await inf.start()
        for inf in list(self._informers.values()):
            await inf.wait_synced()

    async def stop(self) -> None:
        for inf in self._informers.values():
            await inf.stop()


@dataclass
class Options:
    """Tunables from the command line."""

    node_grace_period: float = 40.0
    eviction_timeout: float = 300.0
    monitor_period: float = 2.0
    cluster_cidr: str = "10.244.0.0/16"
    node_cidr_mask: int = 24
    workers: int = 4
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    client: AsyncClient
    informers: SharedInformers
    recorder: EventRecorder
    options: Options


class Controller:
    """Subclasses set `name`, register handlers in `setup`, list keys in `keys` and implement
    `reconcile(key)` (raise to requeue with backoff; return seconds to be called again later)."""

    name = "controller"
    workers = 2

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.informers = ctx.informers
        self.recorder = ctx.recorder
        self.options = ctx.options
        self.queue: WorkQueue[Any] = WorkQueue(name=self.name)
        self.leading = False
        self.setup()

    def setup(self) -> None:
        """Register informer handlers (they may only enqueue keys)."""

    def keys(self) -> Iterable[Any]:
        """Every key to look at when leadership starts."""
        return ()

    async def reconcile(self, key: Any) -> float | None:
        raise NotImplementedError

    def enqueue(self, key: Any) -> None:
        self.queue.add(key)

    async def background(self) -> None:
        """Periodic work while leading (default: none)."""

    async def _counted(self, key: Any) -> float | None:
        try:
            result = await self.reconcile(key)
        except Exception:
            RECONCILES.labels(self.name, "error").inc()
            raise
        RECONCILES.labels(self.name, "ok").inc()
        return result

    async def lead(self) -> None:
        """Run workers until cancelled; a fresh queue per term, seeded with every key."""
        self.queue = WorkQueue(name=self.name)
        for key in self.keys():
            self.queue.add(key)
        self.leading = True
        log.info("controller leading", controller=self.name)
        bg = asyncio.create_task(self.background())
        try:
            await run_workers(self.queue, self._counted, self.workers, name=self.name)
        finally:
            self.leading = False
            self.queue.shutdown()
            bg.cancel()
            with contextlib.suppress(BaseException):
                await bg
