"""LeaderElector: leader election on a Lease object (client-go's leaderelection, simplified).

- Acquire: create the Lease, or take it over when it is released (empty holder) or expired. A lease
  held by someone else counts as expired when its record has not changed for ``lease_duration``
  seconds as observed by this process (no clock comparison across hosts), or when its
  ``renew_time`` is older than ``lease_duration`` plus ``clock_skew`` by this host's clock.
- Every write is a compare-and-swap on the Lease's resource_version (fencing): of two candidates
  only one succeeds, and a deposed leader cannot renew.
- While leading, renew every ``renew_interval``; when renewals fail for ``lease_duration -
  renew_interval`` (or a renewal hits a Conflict showing a new holder) leadership is lost.
- ``run(on_started_leading, on_stopped_leading)`` loops until ``stop()``: on_started_leading() may be
  a coroutine function; it runs as a task that is cancelled when leadership is lost (if it raises,
  this elector steps down). On stop the
  lease is released (holder cleared) so a successor takes over at once.
- ``fencing_token``: the Lease's resource_version when leadership was acquired (increases with every
  acquisition); pass it along with writes that must come from the current leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api import cluster_pb2
from pinnace.client import errors
from pinnace.client.aio import AsyncClient

log = logging.getLogger("pinnace.client.leader")

Callback = Callable[[], Any]


def _now_ts() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


class LeaderElector:
    """Run code only while holding Lease ``namespace/name``; see the module docstring."""

    def __init__(
        self,
        client: AsyncClient,
        name: str,
        identity: str,
        namespace: str = "pinnace-system",
        lease_duration: float = 15.0,
        renew_interval: float = 5.0,
        *,
        retry_interval: float | None = None,
        clock_skew: float = 2.0,
    ) -> None:
        if renew_interval >= lease_duration:
            raise ValueError("renew_interval must be shorter than lease_duration")
        self.client = client
        self.name = name
        self.identity = identity
        self.namespace = namespace
        self.lease_duration = lease_duration
        self.renew_interval = renew_interval
        self.retry_interval = retry_interval if retry_interval is not None else max(0.2, renew_interval / 2)
        self.clock_skew = clock_skew
        self.is_leader = False
        self.fencing_token = 0
        self.lease: cluster_pb2.Lease | None = None
        self._observed_rv = ""
        self._observed_at = 0.0
        self._stopping = asyncio.Event()
        self._leader_changed: Callable[[str], Any] | None = None
        self.holder = ""

    def stop(self) -> None:
        """Ask run() to release the lease and return."""
        self._stopping.set()

    def on_new_leader(self, fn: Callable[[str], Any]) -> None:
        """Call fn(identity) whenever the observed holder changes."""
        self._leader_changed = fn

    # -- lease record ----------------------------------------------------------------------------

    def _observe(self, lease: cluster_pb2.Lease) -> None:
        if lease.metadata.resource_version != self._observed_rv:
            self._observed_rv = lease.metadata.resource_version
            self._observed_at = time.monotonic()
        if lease.spec.holder_identity != self.holder:
            self.holder = lease.spec.holder_identity
            if self._leader_changed is not None:
                try:
                    self._leader_changed(self.holder)
                except Exception:
                    log.exception("leader %s: on_new_leader failed", self.name)
        self.lease = lease

    def _expired(self, lease: cluster_pb2.Lease) -> bool:
        if not lease.spec.holder_identity:
            return True
        duration = lease.spec.lease_duration_seconds if lease.spec.HasField("lease_duration_seconds") else None
        duration_s = float(duration) if duration else self.lease_duration
        if time.monotonic() - self._observed_at > duration_s:
            return True
        if lease.spec.HasField("renew_time"):
            renewed = lease.spec.renew_time.seconds + lease.spec.renew_time.nanos / 1e9
            if time.time() - renewed > duration_s + self.clock_skew:
                return True
        return False

    def _fill(self, lease: cluster_pb2.Lease, acquire: bool) -> None:
        now = _now_ts()
        if acquire:
            if lease.spec.holder_identity != self.identity:
                transitions = lease.spec.lease_transitions if lease.spec.HasField("lease_transitions") else 0
                lease.spec.lease_transitions = transitions + (1 if lease.metadata.resource_version else 0)
            lease.spec.acquire_time.CopyFrom(now)
        lease.spec.holder_identity = self.identity
        lease.spec.lease_duration_seconds = max(1, round(self.lease_duration))
        lease.spec.renew_time.CopyFrom(now)

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this identity holds the lease afterwards."""
        try:
            lease = await self.client.get(cluster_pb2.Lease, self.name, self.namespace)
        except errors.NotFound:
            lease = cluster_pb2.Lease()
            lease.metadata.name = self.name
            lease.metadata.namespace = self.namespace
            self._fill(lease, acquire=True)
            try:
                created = await self.client.create(lease)
            except (errors.AlreadyExists, errors.Conflict):
                return False
            self._observe(created)
            self.fencing_token = int(created.metadata.resource_version or 0)
            return True
        self._observe(lease)
        mine = lease.spec.holder_identity == self.identity
        if not mine and not self._expired(lease):
            return False
        self._fill(lease, acquire=not (mine and self.is_leader))
        try:
            updated = await self.client.update(lease)  # CAS on resource_version
        except errors.Conflict:
            return False
        self._observe(updated)
        if not (mine and self.is_leader):
            self.fencing_token = int(updated.metadata.resource_version or 0)
        return True

    async def release(self) -> None:
        """Give the lease up (clear the holder) if this identity still holds it."""
        try:
            lease = await self.client.get(cluster_pb2.Lease, self.name, self.namespace)
            if lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = ""
            lease.spec.lease_duration_seconds = 1
            lease.spec.renew_time.CopyFrom(_now_ts())
            await self.client.update(lease)
        except errors.PinnaceError as exc:
            log.info("leader %s: release failed (it will expire): %s", self.name, exc)

    # -- main loop -------------------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; True when stop() was called."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except errors.PinnaceError as exc:
            log.info("leader %s: store error: %s", self.name, exc)
            return False

    async def run(self, on_started_leading: Callback | None = None, on_stopped_leading: Callback | None = None) -> None:
        """Acquire, lead, renew; on loss call on_stopped_leading and compete again; until stop()."""
        while not self._stopping.is_set():
            if not await self._attempt():
                if await self._sleep(self.retry_interval):
                    break
                continue
            self.is_leader = True
            log.info("leader %s: %s started leading (token %d)", self.name, self.identity, self.fencing_token)
            task: asyncio.Task[Any] | None = None
            if on_started_leading is not None:
                result = on_started_leading()
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
            last_renew = time.monotonic()
            stopped = False
            while True:
                if await self._sleep(self.renew_interval):
                    stopped = True
                    break
                if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
                    # The leading work crashed: step down so that another candidate takes over.
                    log.error("leader %s: leading task failed: %r", self.name, task.exception())
                    break
                if await self._attempt() and self.holder == self.identity:
                    last_renew = time.monotonic()
                    continue
                if self.holder not in ("", self.identity):
                    log.warning("leader %s: lease taken by %s", self.name, self.holder)
                    break
                if time.monotonic() - last_renew > self.lease_duration - self.renew_interval:
                    log.warning("leader %s: could not renew in time; stepping down", self.name)
                    break
            self.is_leader = False
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if stopped:
                await self.release()
            if on_stopped_leading is not None:
                result = on_stopped_leading()
                if inspect.isawaitable(result):
                    await result
            if stopped:
                break
        self._stopping.clear()
