"""Event recording for components (scheduler, controllers, ...): Kubernetes-style Events with repeat
counting, like client-go's record package. Written in the background and best-effort: rate-limited, and
a full queue or an empty token bucket drops events rather than slowing the component down."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api import cluster_pb2
from pinnace.client import errors
from pinnace.client.aio import AsyncClient
from pinnace.common import kinds
from pinnace.common.logging import get_logger

log = get_logger("events")
REPEAT_WINDOW = 600.0


def _now() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


def object_reference(obj: Message) -> Any:
    """An ObjectReference naming a kind message."""
    info = kinds.of_message(obj)
    m = kinds.meta(obj)
    ref = cluster_pb2.Event().involved_object
    ref.kind = info.kind
    ref.api_version = info.api_version
    ref.namespace = m.namespace
    ref.name = m.name
    ref.uid = m.uid
    ref.resource_version = m.resource_version
    return ref


class EventRecorder:
    """emit() queues an Event; run() writes them. Repeats within 10 minutes bump `count` instead."""

    def __init__(
        self,
        client: AsyncClient,
        component: str,
        host: str = "",
        capacity: int = 2000,
        qps: float = 50.0,
        burst: int = 300,
    ) -> None:
        self.client = client
        self.qps = qps
        self.burst = burst
        self._tokens = float(burst)
        self._refilled = time.monotonic()
        self.component = component
        self.host = host
        self.queue: asyncio.Queue[cluster_pb2.Event] = asyncio.Queue(maxsize=capacity)
        self.dropped = 0
        self.written = 0
        self._seen: dict[tuple[str, ...], tuple[cluster_pb2.Event, float]] = {}

    def emit(self, obj: Message, type_: str, reason: str, message: str) -> None:
        ev = cluster_pb2.Event(reason=reason, message=message, type=type_, count=1)
        ev.involved_object.CopyFrom(object_reference(obj))
        ev.source.component = self.component
        ev.source.host = self.host
        ev.reporting_component = self.component
        ev.reporting_instance = self.host
        if not self._take():
            self.dropped += 1
            return
        now = _now()
        ev.first_timestamp.CopyFrom(now)
        ev.last_timestamp.CopyFrom(now)
        ev.metadata.namespace = ev.involved_object.namespace or "default"
        try:
            self.queue.put_nowait(ev)
        except asyncio.QueueFull:
            self.dropped += 1

    def _take(self) -> bool:
        """Token bucket: at most `qps` events a second after a burst, so that events never crowd out
        the writes that matter (binds, pod creations) under load; the rest are dropped and counted."""
        t = time.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (t - self._refilled) * self.qps)
        self._refilled = t
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    async def _write(self, ev: cluster_pb2.Event) -> None:
        ref = ev.involved_object
        key = (ref.kind, ref.namespace, ref.name, ref.uid, ev.reason, ev.message)
        prior = self._seen.get(key)
        now = time.monotonic()
        if prior is not None and now - prior[1] < REPEAT_WINDOW:
            old = prior[0]
            old.count += 1
            old.last_timestamp.CopyFrom(ev.last_timestamp)
            old.metadata.resource_version = ""
            try:
                self._seen[key] = (await self.client.update(old), now)
                self.written += 1
                return
            except errors.PinnaceError:
                pass  # gone, changed, or not ours to update: record the repeat as a new Event
        ev.metadata.name = f"{ref.name}.{uuid.uuid4().hex[:12]}"
        created = await self.client.create(ev)
        self.written += 1
        self._seen[key] = (created, now)
        if len(self._seen) > 5000:
            cutoff = now - REPEAT_WINDOW
            self._seen = {k: v for k, v in self._seen.items() if v[1] >= cutoff}

    async def _worker(self) -> None:
        while True:
            ev = await self.queue.get()
            try:
                await self._write(ev)
            except errors.PinnaceError as exc:
                log.debug("event not written", reason=ev.reason, error=str(exc))
            finally:
                self.queue.task_done()

    async def run(self, workers: int = 2) -> None:
        tasks = [asyncio.create_task(self._worker()) for _ in range(workers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)
