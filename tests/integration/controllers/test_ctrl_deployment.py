"""Deployment controller against a real store: rollout that never drops below maxUnavailable,
revisions and undo, Recreate, scaling, conditions."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pinnace.api import apps_pb2, pod_pb2
from pinnace.client import AsyncClient, Informer
from services.controllers.podutil import is_ready
from services.controllers.rollout import HASH_LABEL, REVISION, strip_hash
from tests.integration.controllers.harness import control_plane
from tests.integration.scheduler.support import wait_for


def make_deploy(name: str, replicas: int, image: str = "v1", strategy: str = "RollingUpdate") -> apps_pb2.Deployment:
    d = apps_pb2.Deployment()
    d.metadata.name = name
    d.metadata.namespace = "default"
    d.spec.replicas = replicas
    d.spec.selector.match_labels["app"] = name
    d.spec.template.metadata.labels["app"] = name
    c = d.spec.template.spec.containers.add(name="c", image=image)
    c.resources.requests["cpu"].value = "10m"
    d.spec.strategy.type = strategy
    if strategy == "RollingUpdate":
        d.spec.strategy.rolling_update.max_surge.int_val = 1
        d.spec.strategy.rolling_update.max_unavailable.int_val = 1
    return d


async def replica_sets(c: AsyncClient, app: str) -> list[apps_pb2.ReplicaSet]:
    items = (await c.list(apps_pb2.ReplicaSet, "default", label_selector=f"app={app}")).items
    return sorted(items, key=lambda rs: int(rs.metadata.annotations.get(REVISION, "0")))


async def settled(c: AsyncClient, name: str, replicas: int, image: str) -> bool:
    d = await c.get(apps_pb2.Deployment, name)
    s = d.status
    if not (s.observed_generation == d.metadata.generation and s.updated_replicas == replicas):
        return False
    if not (s.replicas == replicas and s.available_replicas == replicas):
        return False
    rss = await replica_sets(c, name)
    live = [rs for rs in rss if rs.spec.replicas]
    return len(live) == 1 and live[0].spec.template.spec.containers[0].image == image


def set_image(image: str):  # type: ignore[no-untyped-def]
    def fn(d: apps_pb2.Deployment) -> None:
        d.spec.template.spec.containers[0].image = image

    return fn


async def test_rolling_update_keeps_availability_and_undo(tmp_path: Path) -> None:
    async with control_plane(tmp_path, agent_delay=0.2) as cp:
        c = cp.client
        await c.create(make_deploy("web", 4))
        await wait_for(lambda: settled(c, "web", 4, "v1"), what="v1 available")
        d = await c.get(apps_pb2.Deployment, "web")
        assert d.metadata.annotations[REVISION] == "1"
        conds = {x.type: (x.status, x.reason) for x in d.status.conditions}
        assert conds["Available"] == ("True", "MinimumReplicasAvailable")
        assert conds["Progressing"] == ("True", "NewReplicaSetAvailable")

        # watch readiness of the deployment's live pods through the whole rollout
        pods: Informer[pod_pb2.Pod] = Informer(AsyncClient(cp.endpoints), pod_pb2.Pod, label_selector="app=web")
        low = [99]

        def sample(*_a: object) -> None:
            if not pods.has_synced:
                return
            ready = [p for p in pods.list() if is_ready(p) and not p.metadata.HasField("deletion_timestamp")]
            low[0] = min(low[0], len(ready))

        pods.add_handler(on_add=sample, on_update=sample, on_delete=sample)
        await pods.start()
        await pods.wait_synced()
        try:
            await c.mutate(apps_pb2.Deployment, "web", "default", set_image("v2"))
            await wait_for(lambda: settled(c, "web", 4, "v2"), timeout=40, what="v2 rolled out")
            await asyncio.sleep(0.3)
        finally:
            await pods.stop()
        assert low[0] >= 3, f"ready pods dropped to {low[0]} (< replicas - maxUnavailable = 3)"

        rss = await replica_sets(c, "web")
        assert [rs.metadata.annotations[REVISION] for rs in rss] == ["1", "2"]
        assert all(rs.metadata.name == f"web-{rs.metadata.labels[HASH_LABEL]}" for rs in rss)
        assert (await c.get(apps_pb2.Deployment, "web")).metadata.annotations[REVISION] == "2"

        # undo as the CLI does it: copy revision 1's template back
        old_template = strip_hash(rss[0].spec.template)

        def undo(d: apps_pb2.Deployment) -> None:
            d.spec.template.CopyFrom(old_template)

        await c.mutate(apps_pb2.Deployment, "web", "default", undo)
        await wait_for(lambda: settled(c, "web", 4, "v1"), timeout=40, what="undo to v1")
        rss = await replica_sets(c, "web")
        assert rss[-1].metadata.name == rss[-1].metadata.name and rss[-1].spec.template.spec.containers[0].image == "v1"
        assert rss[-1].metadata.annotations[REVISION] == "3" and len(rss) == 2
        assert (await c.get(apps_pb2.Deployment, "web")).metadata.annotations[REVISION] == "3"

        # scale
        await c.mutate(apps_pb2.Deployment, "web", "default", lambda d: setattr(d.spec, "replicas", 6))
        await wait_for(lambda: settled(c, "web", 6, "v1"), what="scaled to 6")
        await c.mutate(apps_pb2.Deployment, "web", "default", lambda d: setattr(d.spec, "replicas", 2))
        await wait_for(lambda: settled(c, "web", 2, "v1"), what="scaled to 2")


async def test_recreate_stops_old_pods_before_new(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as cp:
        c = cp.client
        await c.create(make_deploy("db", 3, strategy="Recreate"))
        await wait_for(lambda: settled(c, "db", 3, "v1"), what="v1 available")
        pods: Informer[pod_pb2.Pod] = Informer(AsyncClient(cp.endpoints), pod_pb2.Pod, label_selector="app=db")
        overlap = [False]

        def sample(*_a: object) -> None:
            if not pods.has_synced:
                return
            images = {p.spec.containers[0].image for p in pods.list()}
            if images == {"v1", "v2"}:
                overlap[0] = True

        pods.add_handler(on_add=sample, on_update=sample, on_delete=sample)
        await pods.start()
        await pods.wait_synced()
        try:
            await c.mutate(apps_pb2.Deployment, "db", "default", set_image("v2"))
            await wait_for(lambda: settled(c, "db", 3, "v2"), timeout=30, what="v2 recreated")
        finally:
            await pods.stop()
        assert not overlap[0], "old and new pods existed at the same time"


async def test_progress_deadline_exceeded_when_pods_never_ready(tmp_path: Path) -> None:
    async with control_plane(tmp_path, agent=False) as cp:
        c = cp.client
        d = make_deploy("stuck", 2)
        d.spec.progress_deadline_seconds = 2
        await c.create(d)

        async def exceeded() -> bool:
            dep = await c.get(apps_pb2.Deployment, "stuck")
            cond = {x.type: (x.status, x.reason) for x in dep.status.conditions}
            return cond.get("Progressing") == ("False", "ProgressDeadlineExceeded") and cond.get("Available") == (
                "False",
                "MinimumReplicasUnavailable",
            )

        await wait_for(exceeded, timeout=20, what="ProgressDeadlineExceeded")
