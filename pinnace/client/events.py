"""Event recording for components (scheduler, controllers, node agent, PV binder, SLA controller):
Kubernetes-style Events with repeat counting, like client-go's record package. Written in the background
and best-effort: rate-limited, and a full queue or an empty token bucket drops events rather than slowing
the component down; a failed write is logged and forgotten.

    recorder = EventRecorder(client, "my-controller", host=identity)
    recorder.start()                      # or: run `await recorder.run()` in a task of your own
    recorder.emit(pod, "Normal", "Started", "Started container web", field_path="spec.containers{web}")
    await recorder.stop()
"""

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


def object_reference(obj: Message, field_path: str = "") -> Any:
    """An ObjectReference naming a kind message (and a part of it: "spec.containers{web}")."""
    info = kinds.of_message(obj)
    m = kinds.meta(obj)
    ref = cluster_pb2.Event().involved_object
    ref.kind = info.kind
    ref.api_version = info.api_version
    ref.namespace = m.namespace
    ref.name = m.name
    ref.uid = m.uid
    ref.resource_version = m.resource_version
    ref.field_path = field_path
    return ref


class EventRecorder:
    """emit() queues an Event; run() (or start()/stop(), which run it in a task) writes them. Repeats
    within 10 minutes bump `count` instead. emit() never blocks and never raises."""

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
        self._may_update = True  # False once the store said we may not update Events
        self._task: asyncio.Task[None] | None = None  # run() started by start()
        self._runs = 0  # run()s in progress, ours or a caller's

    def emit(self, obj: Message, type_: str, reason: str, message: str, field_path: str = "") -> None:
        """Queue an Event about `obj`; `field_path` names the part of it concerned, e.g.
        "spec.containers{web}" for a container of a pod."""
        try:
            ref = object_reference(obj, field_path)
        except Exception as exc:  # not a kind message: events must never fail the caller
            self.dropped += 1
            log.debug("event not recorded", reason=reason, error=str(exc))
            return
        ev = cluster_pb2.Event(reason=reason, message=message, type=type_, count=1)
        ev.involved_object.CopyFrom(ref)
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
        key = (ref.kind, ref.namespace, ref.name, ref.uid, ref.field_path, ev.type, ev.reason, ev.message)
        prior = self._seen.get(key)
        now = time.monotonic()
        if prior is not None and now - prior[1] < REPEAT_WINDOW and self._may_update:
            old = prior[0]
            old.count += 1
            old.last_timestamp.CopyFrom(ev.last_timestamp)
            old.metadata.resource_version = ""
            try:
                self._seen[key] = (await self.client.update(old), now)
                self.written += 1
                return
            except errors.Forbidden:
                self._may_update = False  # an identity that may create Events but not update them
            except errors.PinnaceError:
                pass  # gone or changed: record the repeat as a new Event
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
            except Exception as exc:  # best effort: a lost event must not stop the writer
                log.debug("event not written", reason=ev.reason, error=str(exc))
            finally:
                self.queue.task_done()

    async def run(self, workers: int = 2) -> None:
        """Write queued events with `workers` concurrent writers until cancelled."""
        tasks = [asyncio.create_task(self._worker()) for _ in range(workers)]
        self._runs += 1
        try:
            await asyncio.gather(*tasks)
        finally:
            self._runs -= 1
            for t in tasks:
                t.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)

    # -- running in a task of its own ------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether start() has a writer running."""
        return self._task is not None and not self._task.done()

    def start(self, workers: int = 2) -> None:
        """Write events in a background task until stop(); a no-op while already started."""
        if not self.running:
            self._task = asyncio.create_task(self.run(workers), name=f"events-{self.component}")

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event has been written (or given up on); False on timeout or when
        nothing is writing them."""
        if not self._runs and not self.running:
            return self.queue.empty()
        try:
            await asyncio.wait_for(self.queue.join(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self, drain: float = 0.0) -> None:
        """Stop the background writer, first giving queued events up to `drain` seconds to be
        written; whatever is left stays queued (a later start() writes it)."""
        if drain > 0:
            await self.flush(drain)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
