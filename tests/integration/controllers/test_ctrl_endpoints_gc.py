"""Endpoints and garbage collection against a real store."""

from __future__ import annotations

from pathlib import Path

from pinnace.api import apps_pb2, meta_pb2, pod_pb2, service_pb2
from pinnace.client import errors
from tests.integration.controllers.harness import control_plane
from tests.integration.controllers.test_ctrl_deployment import make_deploy
from tests.integration.controllers.test_ctrl_replicaset import make_rs, owned
from tests.integration.scheduler.support import make_pod, mark_running, wait_for


async def test_endpoints_follow_pod_readiness(tmp_path: Path) -> None:
    async with control_plane(tmp_path, scheduler=False, agent=False, controllers=["endpoints"]) as cp:
        c = cp.client
        svc = service_pb2.Service()
        svc.metadata.name = "web"
        svc.metadata.namespace = "default"
        svc.spec.selector["app"] = "web"
        svc.spec.ports.add(name="http", port=80, target_port=meta_pb2.IntOrString(str_val="http"))
        await c.create(svc)
        for i, ready in enumerate([True, False]):
            p = make_pod(f"w{i}", labels={"app": "web"})
            p.spec.node_name = "node0"
            p.spec.containers[0].ports.add(name="http", container_port=8080)
            created = await c.create(p)
            mark_running(created, f"10.244.0.{10 + i}")
            if not ready:
                for cond in created.status.conditions:
                    if cond.type == "Ready":
                        cond.status = "False"
            await c.update_status(created)

        async def ep_ok() -> bool:
            try:
                ep = await c.get(service_pb2.Endpoints, "web")
            except errors.NotFound:
                return False
            if len(ep.subsets) != 1:
                return False
            s = ep.subsets[0]
            return (
                [a.ip for a in s.addresses] == ["10.244.0.10"]
                and [a.ip for a in s.not_ready_addresses] == ["10.244.0.11"]
                and [(p.name, p.port) for p in s.ports] == [("http", 8080)]
                and s.addresses[0].target_ref.name == "w0"
            )

        await wait_for(ep_ok, what="endpoints with one ready and one not-ready address")

        def make_ready(p: pod_pb2.Pod) -> None:
            for cond in p.status.conditions:
                cond.status = "True"

        await c.mutate_status(pod_pb2.Pod, "w1", "default", make_ready)

        async def both_ready() -> bool:
            ep = await c.get(service_pb2.Endpoints, "web")
            return len(ep.subsets) == 1 and len(ep.subsets[0].addresses) == 2

        await wait_for(both_ready, what="both addresses ready")
        await c.delete(service_pb2.Service, "web")

        async def ep_gone() -> bool:
            try:
                await c.get(service_pb2.Endpoints, "web")
            except errors.NotFound:
                return True
            return False

        await wait_for(ep_gone, what="endpoints removed with the service")


async def test_gc_background_foreground_orphan(tmp_path: Path) -> None:
    async with control_plane(tmp_path) as cp:
        c = cp.client
        # background: deleting a ReplicaSet removes its pods
        await c.create(make_rs("bg", 2, app="bg"))

        async def n_pods(rs: str, n: int) -> bool:
            return len(await owned(c, rs)) == n

        await wait_for(lambda: n_pods("bg", 2), what="bg pods")
        await c.delete(apps_pb2.ReplicaSet, "bg")

        async def no_pods(app: str) -> bool:
            return not (await c.list(pod_pb2.Pod, "default", label_selector=f"app={app}")).items

        await wait_for(lambda: no_pods("bg"), what="bg pods collected")

        # orphan: pods stay, without owner references
        await c.create(make_rs("orph", 2, app="orph"))
        await wait_for(lambda: n_pods("orph", 2), what="orph pods")
        await c.delete(apps_pb2.ReplicaSet, "orph", propagation_policy="Orphan")

        async def rs_gone(name: str) -> bool:
            try:
                await c.get(apps_pb2.ReplicaSet, name)
            except errors.NotFound:
                return True
            return False

        await wait_for(lambda: rs_gone("orph"), what="orphaning owner deleted")
        left = (await c.list(pod_pb2.Pod, "default", label_selector="app=orph")).items
        assert len(left) == 2 and all(not p.metadata.owner_references for p in left)

        # foreground: the deployment goes last, after its ReplicaSet and pods
        await c.create(make_deploy("fg", 2))

        async def fg_pods() -> bool:
            return len((await c.list(pod_pb2.Pod, "default", label_selector="app=fg")).items) == 2

        await wait_for(fg_pods, what="fg pods")
        gone = await c.delete(apps_pb2.Deployment, "fg", propagation_policy="Foreground")
        assert gone is not None and gone.metadata.HasField("deletion_timestamp")

        async def all_gone() -> bool:
            rs = (await c.list(apps_pb2.ReplicaSet, "default", label_selector="app=fg")).items
            return not rs and await no_pods("fg") and await rs_gone_deploy()

        async def rs_gone_deploy() -> bool:
            try:
                await c.get(apps_pb2.Deployment, "fg")
            except errors.NotFound:
                return True
            return False

        await wait_for(all_gone, what="foreground deletion finished")
