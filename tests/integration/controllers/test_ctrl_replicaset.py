"""ReplicaSet controller against a real store: replicas, scaling, adoption and release, status, events."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pinnace.api import apps_pb2, cluster_pb2, pod_pb2
from pinnace.client import AsyncClient
from services.controllers.podutil import controller_ref
from tests.integration.controllers.harness import control_plane
from tests.integration.scheduler.support import make_pod, wait_for


def make_rs(name: str, replicas: int, app: str = "web") -> apps_pb2.ReplicaSet:
    rs = apps_pb2.ReplicaSet()
    rs.metadata.name = name
    rs.metadata.namespace = "default"
    rs.spec.replicas = replicas
    rs.spec.selector.match_labels["app"] = app
    rs.spec.template.metadata.labels["app"] = app
    c = rs.spec.template.spec.containers.add(name="c", image="busybox")
    c.resources.requests["cpu"].value = "10m"
    return rs


async def owned(client: AsyncClient, rs_name: str) -> list[pod_pb2.Pod]:
    pods = (await client.list(pod_pb2.Pod, "default")).items
    out = []
    for p in pods:
        ref = controller_ref(p)
        if ref is not None and ref.name == rs_name and not p.metadata.HasField("deletion_timestamp"):
            out.append(p)
    return out


async def test_replicaset_scales_adopts_releases(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as cp:
        c = cp.client
        await c.create(make_rs("web", 3))

        async def count(n: int) -> bool:
            return len(await owned(c, "web")) == n

        await wait_for(lambda: count(3), what="3 pods")

        async def status_ready(n: int) -> bool:
            rs = await c.get(apps_pb2.ReplicaSet, "web")
            s = rs.status
            return (
                s.replicas == n
                and s.ready_replicas == n
                and s.available_replicas == n
                and s.observed_generation == rs.metadata.generation
            )

        await wait_for(lambda: status_ready(3), what="status 3 ready")
        pods = await owned(c, "web")
        assert all(p.metadata.name.startswith("web-") for p in pods)
        ref = controller_ref(pods[0])
        assert ref is not None and ref.kind == "ReplicaSet" and ref.controller

        await c.mutate(apps_pb2.ReplicaSet, "web", "default", lambda rs: setattr(rs.spec, "replicas", 5))
        await wait_for(lambda: status_ready(5), what="scaled to 5")
        await c.mutate(apps_pb2.ReplicaSet, "web", "default", lambda rs: setattr(rs.spec, "replicas", 2))
        await wait_for(lambda: count(2), what="scaled to 2")

        # an orphan with matching labels is adopted (and, being the least valuable, may go at once to
        # keep 2): look for the adoption in the watch history
        rev = await c.current_revision("pod")
        await c.create(make_pod("stray", labels={"app": "web"}))

        async def adopted() -> bool:
            it = c.watch(pod_pb2.Pod, "default", rev).__aiter__()
            while True:
                try:
                    ev = await asyncio.wait_for(it.__anext__(), 0.5)
                except (TimeoutError, StopAsyncIteration):
                    return False
                r = controller_ref(ev.object)
                if ev.object.metadata.name == "stray" and r is not None and r.name == "web":
                    return True

        await wait_for(adopted, what="stray adopted")
        await wait_for(lambda: count(2), what="back to 2 after adoption")

        # a pod relabelled out of the selector is released and replaced
        victim = (await owned(c, "web"))[0].metadata.name

        def relabel(p: pod_pb2.Pod) -> None:
            p.metadata.labels["app"] = "other"

        await c.mutate(pod_pb2.Pod, victim, "default", relabel)

        async def released() -> bool:
            p = await c.get(pod_pb2.Pod, victim)
            return controller_ref(p) is None

        await wait_for(released, what="pod released")
        await wait_for(lambda: count(2), what="replacement created")

        async def events() -> bool:
            evs = (await c.list(cluster_pb2.Event, "default")).items
            reasons = {e.reason for e in evs if e.involved_object.name == "web"}
            return {"SuccessfulCreate", "SuccessfulDelete"} <= reasons

        await wait_for(events, what="events")


async def test_replicaset_deletes_least_valuable_first(tmp_path: Path) -> None:
    # no scheduler: pods stay unscheduled; a hand-bound running pod must survive a scale-down
    async with control_plane(tmp_path, scheduler=False) as cp:
        c = cp.client
        keeper = make_pod("keeper", labels={"app": "db"})
        keeper.spec.node_name = "node0"
        await c.create(keeper)
        await c.create(make_rs("db", 3, app="db"))

        async def n_owned(n: int) -> bool:
            return len(await owned(c, "db")) == n

        await wait_for(lambda: n_owned(3), what="3 pods (keeper adopted + 2 new)")
        await c.mutate(apps_pb2.ReplicaSet, "db", "default", lambda rs: setattr(rs.spec, "replicas", 1))
        await wait_for(lambda: n_owned(1), what="scaled to 1")
        assert [p.metadata.name for p in await owned(c, "db")] == ["keeper"]
