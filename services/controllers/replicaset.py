"""The ReplicaSet controller: keeps `replicas` active pods per ReplicaSet.

Adopts orphan pods matching the selector and releases owned pods that stopped matching (ownerReferences
with controller=true); creates pods in slow-start batches (1, 2, 4, ...; a failure stops the round);
deletes the least valuable pods first; writes status (replicas, ready, available, observedGeneration).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import Any

from pinnace.api import apps_pb2, pod_pb2
from pinnace.client import errors
from pinnace.common.selectors import Selector, from_label_selector
from services.controllers.base import Controller
from services.controllers.expectations import Expectations
from services.controllers.podutil import (
    controller_ref,
    deletion_rank,
    is_active,
    is_available,
    is_ready,
    owner_reference,
    ready_since,
)

BURST_REPLICAS = 500


def pod_from_template(rs: apps_pb2.ReplicaSet) -> pod_pb2.Pod:
    pod = pod_pb2.Pod()
    t = rs.spec.template
    pod.metadata.generate_name = f"{rs.metadata.name}-"
    pod.metadata.namespace = rs.metadata.namespace
    pod.metadata.labels.update(t.metadata.labels)
    pod.metadata.annotations.update(t.metadata.annotations)
    pod.metadata.owner_references.append(owner_reference(rs))
    pod.spec.CopyFrom(t.spec)
    return pod


def desired(rs: apps_pb2.ReplicaSet) -> int:
    return rs.spec.replicas if rs.spec.HasField("replicas") else 1


def _key(ns: str, name: str) -> str:
    return f"{ns}/{name}"


class ReplicaSetController(Controller):
    name = "replicaset"
    workers = 4

    def setup(self) -> None:
        self.rs = self.informers.get(apps_pb2.ReplicaSet)
        self.pods = self.informers.get(pod_pb2.Pod)
        self.expectations = Expectations()
        self.rs.add_handler(
            on_add=self._rs_changed, on_update=lambda _o, n: self._rs_changed(n), on_delete=self._rs_deleted
        )
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)

    def keys(self) -> Iterable[Any]:
        return self.rs.keys()

    # ---- handlers -------------------------------------------------------------------------------
    def _rs_changed(self, rs: apps_pb2.ReplicaSet) -> None:
        self.enqueue(_key(rs.metadata.namespace, rs.metadata.name))

    def _rs_deleted(self, rs: apps_pb2.ReplicaSet) -> None:
        key = _key(rs.metadata.namespace, rs.metadata.name)
        self.expectations.forget(key)
        self.enqueue(key)

    def _owner_key(self, pod: pod_pb2.Pod) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.kind != "ReplicaSet":
            return None
        return _key(pod.metadata.namespace, ref.name)

    def _matching_sets(self, pod: pod_pb2.Pod) -> list[str]:
        out = []
        for rs in self.rs.list(namespace=pod.metadata.namespace):
            try:
                sel = from_label_selector(rs.spec.selector)
            except ValueError:
                continue
            if not sel.empty and sel.matches(pod.metadata.labels):
                out.append(_key(rs.metadata.namespace, rs.metadata.name))
        return out

    def _pod_added(self, pod: pod_pb2.Pod) -> None:
        owner = self._owner_key(pod)
        if owner is not None:
            self.expectations.observed_add(owner, pod.metadata.name)
            self.enqueue(owner)
        elif controller_ref(pod) is None:
            for k in self._matching_sets(pod):
                self.enqueue(k)

    def _pod_updated(self, old: pod_pb2.Pod, new: pod_pb2.Pod) -> None:
        if new.metadata.HasField("deletion_timestamp") and not old.metadata.HasField("deletion_timestamp"):
            owner = self._owner_key(new)
            if owner is not None:
                self.expectations.observed_delete(owner, new.metadata.name)
        for pod in (old, new):
            owner = self._owner_key(pod)
            if owner is not None:
                self.enqueue(owner)
        if controller_ref(new) is None:  # orphans: every matching ReplicaSet may adopt them
            for k in self._matching_sets(new):
                self.enqueue(k)

    def _pod_deleted(self, pod: pod_pb2.Pod) -> None:
        owner = self._owner_key(pod)
        if owner is not None:
            self.expectations.observed_delete(owner, pod.metadata.name)
            self.enqueue(owner)

    # ---- reconcile ------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        rs = self.rs.get(key)
        if rs is None:
            self.expectations.forget(key)
            return None
        try:
            sel = from_label_selector(rs.spec.selector)
        except ValueError:
            return None
        pods = await self._claim_pods(rs, sel)
        active = [p for p in pods if is_active(p)]
        if self.expectations.satisfied(key) and not rs.metadata.HasField("deletion_timestamp"):
            await self._manage(rs, key, active)
        return await self._update_status(rs, pods, sel)

    async def _claim_pods(self, rs: apps_pb2.ReplicaSet, sel: Selector) -> list[pod_pb2.Pod]:
        """Owned pods after adopting matching orphans and releasing owned pods that no longer match."""
        uid = rs.metadata.uid
        owned: list[pod_pb2.Pod] = []
        for pod in self.pods.list(namespace=rs.metadata.namespace):
            ref = controller_ref(pod)
            matches = not sel.empty and sel.matches(pod.metadata.labels)
            if ref is not None and ref.uid == uid:
                if matches:
                    owned.append(pod)
                elif not rs.metadata.HasField("deletion_timestamp"):
                    await self._release(pod, uid)
            elif ref is None and matches and is_active(pod) and not rs.metadata.HasField("deletion_timestamp"):
                adopted = await self._adopt(rs, pod)
                if adopted is not None:
                    owned.append(adopted)
        return owned

    async def _adopt(self, rs: apps_pb2.ReplicaSet, pod: pod_pb2.Pod) -> pod_pb2.Pod | None:
        new = pod_pb2.Pod()
        new.CopyFrom(pod)
        new.metadata.owner_references.append(owner_reference(rs))
        try:
            return await self.client.update(new)
        except errors.NotFound:
            return None  # a Conflict propagates: the key is retried with a fresh cache

    async def _release(self, pod: pod_pb2.Pod, uid: str) -> None:
        new = pod_pb2.Pod()
        new.CopyFrom(pod)
        refs = [r for r in new.metadata.owner_references if r.uid != uid]
        del new.metadata.owner_references[:]
        new.metadata.owner_references.extend(refs)
        with contextlib.suppress(errors.Conflict, errors.NotFound):
            await self.client.update(new)

    async def _manage(self, rs: apps_pb2.ReplicaSet, key: str, active: list[pod_pb2.Pod]) -> None:
        diff = len(active) - desired(rs)
        if diff < 0:
            await self._create(rs, key, min(-diff, BURST_REPLICAS))
        elif diff > 0:
            victims = sorted(active, key=deletion_rank)[: min(diff, BURST_REPLICAS)]
            await self._delete(rs, key, victims)

    async def _create(self, rs: apps_pb2.ReplicaSet, key: str, count: int) -> None:
        """Slow start: batches of 1, 2, 4, ...; stop at the first batch with a failure."""
        created = 0
        batch = 1
        template = pod_from_template(rs)
        while created < count:
            size = min(batch, count - created)
            results = await asyncio.gather(*(self.client.create(template) for _ in range(size)), return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            for r in results:
                if isinstance(r, pod_pb2.Pod):
                    self.expectations.expect_add(key, r.metadata.name)
                    # it may already be in the cache: the add handler ran before we got here
                    if self.pods.get(_key(r.metadata.namespace, r.metadata.name)) is not None:
                        self.expectations.observed_add(key, r.metadata.name)
            ok = size - len(failures)
            created += ok
            if ok:
                self.recorder.emit(
                    rs,
                    "Normal",
                    "SuccessfulCreate",
                    f"Created {ok} pod(s) of {rs.metadata.name}"
                    if ok > 1
                    else f"Created pod: {next(r.metadata.name for r in results if isinstance(r, pod_pb2.Pod))}",
                )
            if failures:
                self.recorder.emit(rs, "Warning", "FailedCreate", f"Error creating: {failures[0]}")
                raise failures[0]
            batch *= 2

    async def _delete(self, rs: apps_pb2.ReplicaSet, key: str, victims: list[pod_pb2.Pod]) -> None:
        for p in victims:
            self.expectations.expect_delete(key, p.metadata.name)

        async def one(p: pod_pb2.Pod) -> None:
            try:
                await self.client.delete(pod_pb2.Pod, p.metadata.name, p.metadata.namespace, uid=p.metadata.uid)
                self.recorder.emit(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {p.metadata.name}")
            except errors.NotFound:
                self.expectations.observed_delete(key, p.metadata.name)
            except errors.PinnaceError:
                self.expectations.observed_delete(key, p.metadata.name)
                raise

        results = await asyncio.gather(*(one(p) for p in victims), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def _update_status(self, rs: apps_pb2.ReplicaSet, pods: list[pod_pb2.Pod], sel: Selector) -> float | None:
        active = [p for p in pods if is_active(p)]
        template_sel = rs.spec.template.metadata.labels
        now = time.time()
        mrs = rs.spec.min_ready_seconds
        status = apps_pb2.ReplicaSetStatus()
        status.CopyFrom(rs.status)
        status.replicas = len(active)
        status.fully_labeled_replicas = sum(
            all(p.metadata.labels.get(k) == v for k, v in template_sel.items()) for p in active
        )
        status.ready_replicas = sum(is_ready(p) for p in active)
        status.available_replicas = sum(is_available(p, mrs, now) for p in active)
        status.observed_generation = rs.metadata.generation
        requeue: float | None = None
        if mrs > 0:
            waits = [mrs - (now - ready_since(p)) for p in active if is_ready(p) and not is_available(p, mrs, now)]
            if waits:
                requeue = max(0.1, min(waits))
        if status != rs.status:
            new = apps_pb2.ReplicaSet()
            new.CopyFrom(rs)
            new.status.CopyFrom(status)
            with contextlib.suppress(errors.NotFound):
                await self.client.update_status(new)
        return requeue
