"""Events the binder records (Bound, ProvisioningSucceeded, VolumeReleased, ...), sent in the background.

Writing an Event never blocks or fails a reconcile: events go through a bounded queue to one
sender task, and are dropped (counted) when the store is slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

from google.protobuf.message import Message

from pinnace.api import cluster_pb2, meta_pb2
from pinnace.client import AsyncClient
from pinnace.common import kinds
from pinnace.common.logging import get_logger

log = get_logger("volagent.events")


class EventRecorder:
    def __init__(self, client: AsyncClient, component: str = "pv-binder", maxsize: int = 10000) -> None:
        self.client = client
        self.component = component
        self.host = socket.gethostname()
        self.queue: asyncio.Queue[cluster_pb2.Event] = asyncio.Queue(maxsize)
        self.dropped = 0
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="binder-events")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def record(self, obj: Message, type_: str, reason: str, message: str) -> None:
        info = kinds.of_message(obj)
        m = kinds.meta(obj)
        ev = cluster_pb2.Event(
            metadata=meta_pb2.ObjectMeta(name=f"{m.name}.{os.urandom(8).hex()}", namespace=m.namespace or "default"),
            involved_object=meta_pb2.ObjectReference(
                kind=info.kind,
                namespace=m.namespace,
                name=m.name,
                uid=m.uid,
                api_version=info.api_version,
                resource_version=m.resource_version,
            ),
            reason=reason,
            message=message,
            type=type_,
            count=1,
            source=cluster_pb2.EventSource(component=self.component, host=self.host),
            reporting_component=self.component,
            reporting_instance=self.host,
        )
        ev.first_timestamp.GetCurrentTime()
        ev.last_timestamp.CopyFrom(ev.first_timestamp)
        try:
            self.queue.put_nowait(ev)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _run(self) -> None:
        while True:
            ev = await self.queue.get()
            try:
                await self.client.create(ev)
                self.sent += 1
            except Exception as exc:  # events are best effort
                log.debug("event not recorded", reason=ev.reason, error=str(exc))
