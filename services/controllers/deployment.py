"""The Deployment controller: ReplicaSets per pod-template hash, RollingUpdate and Recreate, scaling,
revision annotations (rollout history and undo), conditions Available and Progressing, status.

Each reconcile takes one step (create/scale a ReplicaSet) and returns; the informer event of that
write brings the Deployment back with a fresh cache, like the upstream controller.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api import apps_pb2, meta_pb2, pod_pb2
from pinnace.client import errors
from pinnace.common.selectors import Selector, from_label_selector
from services.controllers.base import Controller
from services.controllers.podutil import controller_ref, creation_seconds, owner_reference
from services.controllers.rollout import (
    DESIRED_REPLICAS,
    HASH_LABEL,
    MAX_REPLICAS,
    REVISION,
    available_budget,
    new_rs_replicas,
    old_scale_down_budget,
    replicas_of,
    revision_of,
    surge_and_unavailable,
    template_hash,
    templates_equal,
)

DEFAULT_HISTORY = 10
CHANGE_CAUSE = "kubernetes.io/change-cause"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
DEFAULT_PROGRESS_DEADLINE = 600


def _key(ns: str, name: str) -> str:
    return f"{ns}/{name}"


def _now() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


def _effective_available(rs: apps_pb2.ReplicaSet) -> int:
    """Available replicas, never more than the ReplicaSet now wants (its status may lag a scale-down)."""
    return min(rs.status.available_replicas, replicas_of(rs))


def _conservative(rs_list: list[apps_pb2.ReplicaSet]) -> list[apps_pb2.ReplicaSet]:
    out = []
    for rs in rs_list:
        c = apps_pb2.ReplicaSet()
        c.CopyFrom(rs)
        c.status.available_replicas = _effective_available(rs)
        out.append(c)
    return out


class DeploymentController(Controller):
    name = "deployment"
    workers = 4

    def setup(self) -> None:
        self.deploys = self.informers.get(apps_pb2.Deployment)
        self.rs = self.informers.get(apps_pb2.ReplicaSet)
        self.pods = self.informers.get(pod_pb2.Pod)
        self.deploys.add_handler(on_add=self._d, on_update=lambda _o, n: self._d(n), on_delete=self._d)
        self.rs.add_handler(on_add=self._rs, on_update=self._rs_updated, on_delete=self._rs)
        self.pods.add_handler(on_delete=self._pod_deleted)

    def keys(self) -> Iterable[Any]:
        return self.deploys.keys()

    def _d(self, d: apps_pb2.Deployment) -> None:
        self.enqueue(_key(d.metadata.namespace, d.metadata.name))

    def _rs(self, rs: apps_pb2.ReplicaSet) -> None:
        ref = controller_ref(rs)
        if ref is not None and ref.kind == "Deployment":
            self.enqueue(_key(rs.metadata.namespace, ref.name))
        elif ref is None:
            for d in self._matching(rs):
                self.enqueue(d)

    def _rs_updated(self, old: apps_pb2.ReplicaSet, new: apps_pb2.ReplicaSet) -> None:
        self._rs(new)
        if controller_ref(old) != controller_ref(new):
            self._rs(old)

    def _pod_deleted(self, pod: pod_pb2.Pod) -> None:
        """Recreate waits for old pods to be gone: a pod deletion may unblock it."""
        ref = controller_ref(pod)
        if ref is None or ref.kind != "ReplicaSet":
            return
        rs = self.rs.get(_key(pod.metadata.namespace, ref.name))
        if rs is not None:
            self._rs(rs)

    def _matching(self, rs: apps_pb2.ReplicaSet) -> list[str]:
        out = []
        for d in self.deploys.list(namespace=rs.metadata.namespace):
            with contextlib.suppress(ValueError):
                sel = from_label_selector(d.spec.selector)
                if not sel.empty and sel.matches(rs.metadata.labels):
                    out.append(_key(d.metadata.namespace, d.metadata.name))
        return out

    # ---- reconcile ------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> float | None:
        d = self.deploys.get(key)
        if d is None or d.metadata.HasField("deletion_timestamp"):
            return None
        try:
            sel = from_label_selector(d.spec.selector)
        except ValueError:
            return None
        if sel.empty:
            return None
        rss = await self._claim(d, sel)
        new = next((rs for rs in rss if templates_equal(rs.spec.template, d.spec.template)), None)
        olds = sorted((rs for rs in rss if rs is not new), key=creation_seconds)
        if new is not None and await self._sync_revision(d, new, olds):
            return None
        if d.spec.paused:
            return await self._status(d, rss, new, olds)
        if d.spec.strategy.type == "Recreate":
            changed = await self._recreate(d, new, olds)
        else:
            changed = await self._rolling(d, new, olds, rss)
        if changed:
            return None
        await self._cleanup(d, olds)
        return await self._status(d, rss, new, olds)

    async def _claim(self, d: apps_pb2.Deployment, sel: Selector) -> list[apps_pb2.ReplicaSet]:
        out = []
        for rs in self.rs.list(namespace=d.metadata.namespace):
            ref = controller_ref(rs)
            if ref is not None and ref.uid == d.metadata.uid:
                out.append(rs)
            elif ref is None and sel.matches(rs.metadata.labels) and not rs.metadata.HasField("deletion_timestamp"):
                new = apps_pb2.ReplicaSet()
                new.CopyFrom(rs)
                new.metadata.owner_references.append(owner_reference(d))
                with contextlib.suppress(errors.Conflict, errors.NotFound):
                    out.append(await self.client.update(new))
        return out

    async def _sync_revision(
        self, d: apps_pb2.Deployment, new: apps_pb2.ReplicaSet, olds: list[apps_pb2.ReplicaSet]
    ) -> bool:
        """The current template's ReplicaSet carries the highest revision (also after an undo), and the
        Deployment's revision annotation follows it. True when something was written."""
        max_old = max((revision_of(rs) for rs in olds), default=0)
        rev = revision_of(new)
        cause = d.metadata.annotations.get(CHANGE_CAUSE)
        if rev <= max_old or (cause is not None and new.metadata.annotations.get(CHANGE_CAUSE) != cause):
            rs = apps_pb2.ReplicaSet()
            rs.CopyFrom(new)
            if rev <= max_old:
                rs.metadata.annotations[REVISION] = str(max_old + 1)
            if cause is not None:
                rs.metadata.annotations[CHANGE_CAUSE] = cause
            await self.client.update(rs)
            return True
        if d.metadata.annotations.get(REVISION) != str(rev):
            nd = apps_pb2.Deployment()
            nd.CopyFrom(d)
            nd.metadata.annotations[REVISION] = str(rev)
            await self.client.update(nd)
            return True
        return False

    async def _create_new(self, d: apps_pb2.Deployment, olds: list[apps_pb2.ReplicaSet], replicas: int) -> None:
        collisions = d.status.collision_count if d.status.HasField("collision_count") else 0
        h = template_hash(d.spec.template, collisions)
        rs = apps_pb2.ReplicaSet()
        rs.metadata.name = f"{d.metadata.name}-{h}"
        rs.metadata.namespace = d.metadata.namespace
        rs.metadata.labels.update(d.spec.template.metadata.labels)
        rs.metadata.labels[HASH_LABEL] = h
        for k, v in d.metadata.annotations.items():
            if k not in (REVISION, LAST_APPLIED) and not k.startswith("deployment.kubernetes.io/"):
                rs.metadata.annotations[k] = v  # e.g. kubernetes.io/change-cause, for rollout history
        rs.metadata.annotations[REVISION] = str(max((revision_of(o) for o in olds), default=0) + 1)
        rs.metadata.annotations[DESIRED_REPLICAS] = str(replicas_of(d))
        rs.metadata.annotations[MAX_REPLICAS] = str(replicas_of(d) + surge_and_unavailable(d)[0])
        rs.metadata.owner_references.append(owner_reference(d))
        rs.spec.replicas = replicas
        rs.spec.min_ready_seconds = d.spec.min_ready_seconds
        rs.spec.selector.CopyFrom(d.spec.selector)
        rs.spec.selector.match_labels[HASH_LABEL] = h
        rs.spec.template.CopyFrom(d.spec.template)
        rs.spec.template.metadata.labels[HASH_LABEL] = h
        try:
            await self.client.create(rs)
        except errors.AlreadyExists:
            existing = await self.client.get(apps_pb2.ReplicaSet, rs.metadata.name, rs.metadata.namespace)
            ref = controller_ref(existing)
            if (
                ref is not None
                and ref.uid == d.metadata.uid
                and templates_equal(existing.spec.template, d.spec.template)
            ):
                return  # ours; the informer has not shown it yet
            nd = apps_pb2.Deployment()
            nd.CopyFrom(d)
            nd.status.collision_count = collisions + 1
            await self.client.update_status(nd)
            raise
        self.recorder.emit(d, "Normal", "ScalingReplicaSet", f"Scaled up replica set {rs.metadata.name} to {replicas}")

    async def _scale(self, d: apps_pb2.Deployment, rs: apps_pb2.ReplicaSet, replicas: int) -> bool:
        before = replicas_of(rs)
        if before == replicas and rs.metadata.annotations.get(DESIRED_REPLICAS) == str(replicas_of(d)):
            return False
        new = apps_pb2.ReplicaSet()
        new.CopyFrom(rs)
        new.spec.replicas = replicas
        new.metadata.annotations[DESIRED_REPLICAS] = str(replicas_of(d))
        new.metadata.annotations[MAX_REPLICAS] = str(replicas_of(d) + surge_and_unavailable(d)[0])
        await self.client.update(new)
        if before != replicas:
            verb = "up" if replicas > before else "down"
            self.recorder.emit(
                d,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled {verb} replica set {rs.metadata.name} to {replicas}"
                + (f" from {before}" if verb == "down" else ""),
            )
        return True

    async def _rolling(
        self,
        d: apps_pb2.Deployment,
        new: apps_pb2.ReplicaSet | None,
        olds: list[apps_pb2.ReplicaSet],
        rss: list[apps_pb2.ReplicaSet],
    ) -> bool:
        if new is None:
            probe = apps_pb2.ReplicaSet()
            probe.spec.replicas = 0
            await self._create_new(d, olds, new_rs_replicas(d, rss, probe))
            return True
        want = replicas_of(d)
        if replicas_of(new) > want:
            return await self._scale(d, new, want)
        target = new_rs_replicas(d, rss, new)
        if target != replicas_of(new):
            return await self._scale(d, new, target)
        return await self._scale_down_old(d, new, olds, rss)

    async def _scale_down_old(
        self,
        d: apps_pb2.Deployment,
        new: apps_pb2.ReplicaSet,
        olds: list[apps_pb2.ReplicaSet],
        rss: list[apps_pb2.ReplicaSet],
    ) -> bool:
        if sum(replicas_of(rs) for rs in olds) == 0:
            return False
        safe_all = _conservative(rss)
        safe_new = next(rs for rs in safe_all if rs.metadata.uid == new.metadata.uid)
        budget = old_scale_down_budget(d, safe_all, safe_new)
        if budget <= 0:
            return False
        changed = False
        # unhealthy old replicas first: removing them costs no availability
        for rs in olds:
            if budget <= 0:
                break
            unhealthy = replicas_of(rs) - _effective_available(rs)
            if unhealthy <= 0:
                continue
            down = min(unhealthy, budget)
            changed |= await self._scale(d, rs, replicas_of(rs) - down)
            budget -= down
        if changed:
            return True
        allowed = min(budget, available_budget(d, safe_all))
        for rs in olds:
            if allowed <= 0:
                break
            r = replicas_of(rs)
            if r == 0:
                continue
            down = min(r, allowed)
            changed |= await self._scale(d, rs, r - down)
            allowed -= down
        return changed

    async def _recreate(
        self, d: apps_pb2.Deployment, new: apps_pb2.ReplicaSet | None, olds: list[apps_pb2.ReplicaSet]
    ) -> bool:
        changed = False
        for rs in olds:
            if replicas_of(rs) > 0:
                changed |= await self._scale(d, rs, 0)
        if changed:
            return True
        old_uids = {rs.metadata.uid for rs in olds}
        for p in self.pods.list(namespace=d.metadata.namespace):
            ref = controller_ref(p)
            if ref is not None and ref.uid in old_uids:
                return False  # wait until every old pod is gone
        if new is None:
            await self._create_new(d, olds, replicas_of(d))
            return True
        return await self._scale(d, new, replicas_of(d))

    async def _cleanup(self, d: apps_pb2.Deployment, olds: list[apps_pb2.ReplicaSet]) -> None:
        limit = d.spec.revision_history_limit if d.spec.HasField("revision_history_limit") else DEFAULT_HISTORY
        idle = [rs for rs in olds if replicas_of(rs) == 0 and rs.status.replicas == 0]
        idle.sort(key=revision_of)
        for rs in idle[: max(0, len(idle) - limit)]:
            with contextlib.suppress(errors.NotFound):
                await self.client.delete(apps_pb2.ReplicaSet, rs.metadata.name, rs.metadata.namespace)

    # ---- status ---------------------------------------------------------------------------------
    async def _status(
        self,
        d: apps_pb2.Deployment,
        rss: list[apps_pb2.ReplicaSet],
        new: apps_pb2.ReplicaSet | None,
        olds: list[apps_pb2.ReplicaSet],
    ) -> float | None:
        want = replicas_of(d)
        st = apps_pb2.DeploymentStatus()
        st.CopyFrom(d.status)
        st.observed_generation = d.metadata.generation
        st.replicas = sum(rs.status.replicas for rs in rss)
        st.updated_replicas = new.status.replicas if new is not None else 0
        st.ready_replicas = sum(rs.status.ready_replicas for rs in rss)
        st.available_replicas = sum(rs.status.available_replicas for rs in rss)
        st.unavailable_replicas = max(0, want - st.available_replicas)
        _, unavail = surge_and_unavailable(d)
        min_avail = want - (unavail if d.spec.strategy.type != "Recreate" else 0)
        if st.available_replicas >= min_avail:
            _set(st, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            _set(
                st, "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."
            )
        requeue = self._progress(d, st, new, olds, want)
        if st != d.status:
            nd = apps_pb2.Deployment()
            nd.CopyFrom(d)
            nd.status.CopyFrom(st)
            with contextlib.suppress(errors.NotFound):
                await self.client.update_status(nd)
        return requeue

    def _progress(
        self,
        d: apps_pb2.Deployment,
        st: apps_pb2.DeploymentStatus,
        new: apps_pb2.ReplicaSet | None,
        olds: list[apps_pb2.ReplicaSet],
        want: int,
    ) -> float | None:
        name = new.metadata.name if new is not None else d.metadata.name
        old_pods = sum(rs.status.replicas for rs in olds)
        complete = (
            new is not None
            and st.updated_replicas == want
            and st.replicas == want
            and st.available_replicas == want
            and old_pods == 0
        )
        if d.spec.paused:
            _set(st, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
            return None
        if complete:
            _set(
                st, "Progressing", "True", "NewReplicaSetAvailable", f'ReplicaSet "{name}" has successfully progressed.'
            )
            return None
        prior = next((c for c in d.status.conditions if c.type == "Progressing"), None)
        progressed = (
            prior is None
            or prior.reason in ("NewReplicaSetAvailable", "DeploymentPaused")
            or (st.updated_replicas, st.ready_replicas, st.available_replicas, st.replicas)
            != (d.status.updated_replicas, d.status.ready_replicas, d.status.available_replicas, d.status.replicas)
        )
        deadline = d.spec.progress_deadline_seconds if d.spec.HasField("progress_deadline_seconds") else 600
        if progressed:
            _set(st, "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.', touch=True)
            return float(deadline)
        assert prior is not None
        last = prior.last_update_time.seconds + prior.last_update_time.nanos / 1e9
        left = deadline - (time.time() - last)
        if left <= 0:
            if prior.reason != "ProgressDeadlineExceeded":
                self.recorder.emit(
                    d, "Warning", "ProgressDeadlineExceeded", f'ReplicaSet "{name}" has timed out progressing.'
                )
            _set(
                st,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{name}" has timed out progressing.',
            )
            return None
        return max(1.0, left)


def _set(
    st: apps_pb2.DeploymentStatus, type_: str, status: str, reason: str, message: str, touch: bool = False
) -> None:
    for c in st.conditions:
        if c.type == type_:
            if c.status == status and c.reason == reason and c.message == message and not touch:
                return
            if c.status != status:
                c.last_transition_time.CopyFrom(_now())
            c.status, c.reason, c.message = status, reason, message
            c.last_update_time.CopyFrom(_now())
            return
    c2: meta_pb2.Condition = st.conditions.add(type=type_, status=status, reason=reason, message=message)
    c2.last_transition_time.CopyFrom(_now())
    c2.last_update_time.CopyFrom(_now())
