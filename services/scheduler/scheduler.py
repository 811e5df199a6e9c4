"""The scheduler service: informers feed the cache and the queue; while leading, one loop decides and
binds pods by compare-and-swap, many binds in flight at once.

Double binding is impossible by construction: a bind is an Update of the pod with the resource_version
the decision was based on, so a pod that changed meanwhile (bound by a former leader, relabelled,
deleted) makes the bind fail with Conflict and the pod is looked at again from a fresh cache entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import Counter, Histogram

from pinnace.api import node_pb2, pod_pb2, storage_pb2
from pinnace.client import AsyncClient, Informer, errors
from pinnace.client.events import EventRecorder
from pinnace.common.logging import get_logger
from services.scheduler.cache import NodeCache, pod_key
from services.scheduler.framework import Decision, Framework
from services.scheduler.plugins import default_plugins
from services.scheduler.queue import SchedulingQueue
from services.scheduler.resources import pod_is_terminal

log = get_logger("scheduler")
DEFAULT_SCHEDULER = "default-scheduler"
ATTEMPTS = Counter("pinnace_scheduler_attempts_total", "scheduling attempts by result", ["result"])
DECISION = Histogram(
    "pinnace_scheduler_decision_seconds",
    "time to decide for one pod (filters + scores)",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1),
)


class InformerVolumes:
    """VolumeLister over the claim, volume and class informers."""

    def __init__(
        self,
        pvcs: Informer[storage_pb2.PersistentVolumeClaim],
        pvs: Informer[storage_pb2.PersistentVolume],
        classes: Informer[storage_pb2.StorageClass],
    ) -> None:
        self.pvcs, self.pvs, self.classes = pvcs, pvs, classes

    def get_pvc(self, namespace: str, name: str) -> storage_pb2.PersistentVolumeClaim | None:
        return self.pvcs.get(f"{namespace}/{name}")

    def get_pv(self, name: str) -> storage_pb2.PersistentVolume | None:
        return self.pvs.get(name)

    def get_storage_class(self, name: str) -> storage_pb2.StorageClass | None:
        return self.classes.get(name)


def _node_relevant(old: node_pb2.Node, new: node_pb2.Node) -> bool:
    """Did a node change in a way that can make a parked pod fit?"""
    return (
        old.metadata.labels != new.metadata.labels
        or list(old.spec.taints) != list(new.spec.taints)
        or old.spec.unschedulable != new.spec.unschedulable
        or old.status.allocatable != new.status.allocatable
        or old.status.capacity != new.status.capacity
    )


def _now() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


def set_condition(pod: pod_pb2.Pod, status: str, reason: str, message: str) -> bool:
    """Set PodScheduled; False when nothing changed."""
    for c in pod.status.conditions:
        if c.type == "PodScheduled":
            if c.status == status and c.reason == reason and c.message == message:
                return False
            if c.status != status:
                c.last_transition_time.CopyFrom(_now())
            c.status, c.reason, c.message = status, reason, message
            c.last_probe_time.CopyFrom(_now())
            return True
    c = pod.status.conditions.add(type="PodScheduled", status=status, reason=reason, message=message)
    c.last_transition_time.CopyFrom(_now())
    c.last_probe_time.CopyFrom(_now())
    if not pod.status.phase:
        pod.status.phase = "Pending"
    return True


class Scheduler:
    """See the module docstring."""

    def __init__(
        self,
        client: AsyncClient,
        identity: str = "scheduler",
        scheduler_name: str = DEFAULT_SCHEDULER,
        bind_concurrency: int = 128,
        seed: int | None = None,
        events: bool = True,
    ) -> None:
        self.client = client
        self.identity = identity
        self.scheduler_name = scheduler_name
        self.cache = NodeCache()
        self.pods: Informer[pod_pb2.Pod] = Informer(client, pod_pb2.Pod, name="sched-pods")
        self.nodes: Informer[node_pb2.Node] = Informer(client, node_pb2.Node, name="sched-nodes")
        self.pvcs: Informer[storage_pb2.PersistentVolumeClaim] = Informer(client, storage_pb2.PersistentVolumeClaim)
        self.pvs: Informer[storage_pb2.PersistentVolume] = Informer(client, storage_pb2.PersistentVolume)
        self.classes: Informer[storage_pb2.StorageClass] = Informer(client, storage_pb2.StorageClass)
        filters, scores = default_plugins()
        volumes = InformerVolumes(self.pvcs, self.pvs, self.classes)
        self.framework = Framework(self.cache, filters, scores, volumes, seed=seed)
        self.queue = SchedulingQueue()
        self.recorder = EventRecorder(client, "default-scheduler", identity)
        self.events_enabled = events
        self.bind_concurrency = bind_concurrency
        self._sem = asyncio.Semaphore(bind_concurrency)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.stats = {"attempts": 0, "bound": 0, "unschedulable": 0, "conflicts": 0, "errors": 0}
        self.decide_seconds = 0.0
        self.leading = False
        self._wire()

    # ---- informer handlers: keep the cache and the queue current, never block -------------------
    def _ours(self, pod: pod_pb2.Pod) -> bool:
        return (
            not pod.spec.node_name
            and pod.spec.scheduler_name in ("", self.scheduler_name)
            and not pod.metadata.HasField("deletion_timestamp")
            and not pod_is_terminal(pod)
        )

    def _wire(self) -> None:
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)
        self.nodes.add_handler(on_add=self._node_added, on_update=self._node_updated, on_delete=self._node_deleted)
        for inf in (self.pvcs, self.pvs, self.classes):
            inf.add_handler(
                on_add=lambda _o: self.queue.move_all(),
                on_update=lambda _a, _b: self.queue.move_all(),
            )

    def _pod_added(self, pod: pod_pb2.Pod) -> None:
        if self._ours(pod):
            key = pod_key(pod)
            self.queue.set_priority(key, pod.spec.priority if pod.spec.HasField("priority") else 0)
            self.queue.add(key)
        else:
            self.cache.observe_pod(pod)

    def _pod_updated(self, old: pod_pb2.Pod, new: pod_pb2.Pod) -> None:
        key = pod_key(new)
        if self._ours(new):
            if old.spec != new.spec or old.metadata.labels != new.metadata.labels:
                self.queue.add(key)
            return
        self.queue.remove(key)
        was_counted = key in self.cache.pods
        self.cache.observe_pod(new)
        if was_counted and key not in self.cache.pods:
            self.queue.move_all()  # a pod finished: its resources are free
        elif old.metadata.labels != new.metadata.labels:
            self.queue.move_all()

    def _pod_deleted(self, pod: pod_pb2.Pod) -> None:
        key = pod_key(pod)
        self.queue.remove(key)
        if self.cache.remove_pod(key) is not None:
            self.queue.move_all()

    def _node_added(self, node: node_pb2.Node) -> None:
        self.cache.upsert_node(node)
        self.queue.move_all()

    def _node_updated(self, old: node_pb2.Node, new: node_pb2.Node) -> None:
        self.cache.upsert_node(new)
        if _node_relevant(old, new):
            self.queue.move_all()

    def _node_deleted(self, node: node_pb2.Node) -> None:
        self.cache.remove_node(node.metadata.name)

    # ---- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the informers (also on stand-by instances, so a takeover starts warm)."""
        for inf in (self.nodes, self.pvcs, self.pvs, self.classes, self.pods):
            await inf.start()
        for inf in (self.nodes, self.pvcs, self.pvs, self.classes, self.pods):
            await inf.wait_synced()

    async def stop(self) -> None:
        for inf in (self.pods, self.nodes, self.pvcs, self.pvs, self.classes):
            await inf.stop()

    async def lead(self) -> None:
        """Schedule until cancelled (leadership lost)."""
        self.leading = True
        # a fresh semaphore per term: tasks cancelled before they ran never released theirs
        self._sem = asyncio.Semaphore(self.bind_concurrency)
        self.queue.move_all()  # pods parked in an earlier term get a fresh look
        log.info("scheduling", identity=self.identity, pending=len(self.queue))
        side = [asyncio.create_task(self._flush_loop())]
        if self.events_enabled:
            side.append(asyncio.create_task(self.recorder.run()))
        try:
            await self._loop()
        finally:
            self.leading = False
            for t in side:
                t.cancel()
            tasks = list(self._tasks)
            for t in tasks:
                t.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*side, *tasks, return_exceptions=True)

    async def _flush_loop(self) -> None:
        last: dict[str, int] = {}
        while True:
            await asyncio.sleep(15)
            self.queue.flush_stale()
            if self.stats != last:
                last = dict(self.stats)
                log.info(
                    "scheduler stats",
                    **last,
                    active=len(self.queue),
                    parked=self.queue.unschedulable_count,
                    nodes=self.cache.node_count(),
                    events_dropped=self.recorder.dropped,
                )

    async def _loop(self) -> None:
        n = 0
        while True:
            key = await self.queue.pop()
            await self._sem.acquire()
            try:
                started = self.schedule_one(key)
            except Exception:
                self._sem.release()
                log.exception("scheduling failed", pod=key)
                self.queue.add_backoff(key)
                continue
            if not started:
                self._sem.release()
            n += 1
            if n % 16 == 0:
                await asyncio.sleep(0)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def schedule_one(self, key: str) -> bool:
        """Decide for one pod; True when a background task (which releases the semaphore) was started."""
        pod = self.pods.get(key)
        if pod is None or not self._ours(pod) or key in self.cache.assumed:
            return False
        self.stats["attempts"] += 1
        t0 = time.perf_counter()
        decision = self.framework.schedule(pod)
        took = time.perf_counter() - t0
        self.decide_seconds += took
        DECISION.observe(took)
        if decision.node is not None:
            self.cache.assume(pod, decision.node)
            self._spawn(self._bind(pod, decision.node))
            return True
        self.stats["unschedulable"] += 1
        ATTEMPTS.labels("unschedulable").inc()
        self.queue.park(key)
        self._spawn(self._report_unschedulable(pod, decision))
        return True

    async def _bind(self, pod: pod_pb2.Pod, node: str) -> None:
        key = pod_key(pod)
        try:
            new = pod_pb2.Pod()
            new.CopyFrom(pod)
            new.spec.node_name = node
            bound = await self.client.update(new)  # CAS on the resource_version we decided on
        except errors.Conflict:
            self.stats["conflicts"] += 1
            ATTEMPTS.labels("conflict").inc()
            self.cache.forget(key)
            self.queue.add_backoff(key)
            return
        except errors.NotFound:
            self.cache.forget(key)
            return
        except errors.PinnaceError as exc:
            self.stats["errors"] += 1
            ATTEMPTS.labels("error").inc()
            log.warning("bind failed", pod=key, node=node, error=str(exc))
            self.cache.forget(key)
            self.queue.add_backoff(key)
            return
        except asyncio.CancelledError:
            self.cache.forget(key)
            raise
        finally:
            self._sem.release()
        self.stats["bound"] += 1
        ATTEMPTS.labels("scheduled").inc()
        self.queue.done(key)
        if self.events_enabled:
            self.recorder.emit(bound, "Normal", "Scheduled", f"Successfully assigned {key} to {node}")
        if any(c.type == "PodScheduled" and c.status != "True" for c in bound.status.conditions):
            if set_condition(bound, "True", "", ""):
                with contextlib.suppress(errors.PinnaceError):
                    await self.client.update_status(bound)

    async def _report_unschedulable(self, pod: pod_pb2.Pod, decision: Decision) -> None:
        try:
            message = decision.message
            if self.events_enabled:
                self.recorder.emit(pod, "Warning", "FailedScheduling", message)
            new = pod_pb2.Pod()
            new.CopyFrom(pod)
            if set_condition(new, "False", "Unschedulable", message):
                with contextlib.suppress(errors.Conflict, errors.NotFound):
                    await self.client.update_status(new)
            log.info("unschedulable", pod=decision.pod, message=message)
        except errors.PinnaceError as exc:
            log.warning("could not record unschedulable pod", pod=decision.pod, error=str(exc))
        finally:
            self._sem.release()
