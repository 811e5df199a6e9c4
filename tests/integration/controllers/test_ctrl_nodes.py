"""Node lifecycle (heartbeat loss -> Unknown + taints -> evictions -> recovery) and node IPAM."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from pinnace.api import cluster_pb2, node_pb2
from pinnace.client import AsyncClient
from services.controllers.base import Options
from tests.integration.controllers.harness import control_plane
from tests.integration.controllers.test_ctrl_replicaset import make_rs, owned
from tests.integration.scheduler.support import create_node, make_node, wait_for


async def heartbeat(c: AsyncClient, node: str, stop: asyncio.Event) -> None:
    lease = cluster_pb2.Lease()
    lease.metadata.name = node
    lease.metadata.namespace = "kube-node-lease"
    lease.spec.holder_identity = node
    lease.spec.renew_time.GetCurrentTime()
    lease = await c.create(lease)
    while not stop.is_set():
        await asyncio.sleep(0.2)
        lease.spec.renew_time.GetCurrentTime()
        lease.metadata.resource_version = ""
        lease = await c.update(lease)


async def test_node_lost_tainted_pods_evicted_then_recovers(tmp_path: Path) -> None:
    opts = Options(node_grace_period=1.5, eviction_timeout=1.0, monitor_period=0.3)
    async with control_plane(tmp_path, nodes=0, options=opts) as cp:
        c = cp.client
        await create_node(c, make_node("a", cpu="8"))
        await create_node(c, make_node("b", cpu="8"))
        stops = {n: asyncio.Event() for n in ("a", "b")}
        beats = {n: asyncio.create_task(heartbeat(c, n, stops[n])) for n in ("a", "b")}
        try:
            await c.create(make_rs("web", 4))

            async def running(n: int) -> bool:
                pods = await owned(c, "web")
                return len([p for p in pods if p.status.phase == "Running"]) == n

            await wait_for(lambda: running(4), what="4 running pods")
            on_a = {p.metadata.name for p in await owned(c, "web") if p.spec.node_name == "a"}
            assert cp.agent is not None
            cp.agent.paused = True  # node a's agent is "dead": nothing finalizes its pods
            stops["a"].set()

            async def tainted() -> bool:
                n = await c.get(node_pb2.Node, "a")
                keys = {(t.key, t.effect) for t in n.spec.taints}
                ready = next(x for x in n.status.conditions if x.type == "Ready")
                return ready.status == "Unknown" and keys == {
                    ("node.kubernetes.io/unreachable", "NoSchedule"),
                    ("node.kubernetes.io/unreachable", "NoExecute"),
                }

            await wait_for(tainted, timeout=10, what="node a Unknown and tainted")
            cp.agent.paused = False

            async def replaced() -> bool:
                pods = await owned(c, "web")
                names = {p.metadata.name for p in pods}
                return len(pods) == 4 and not (names & on_a) and all(p.spec.node_name == "b" for p in pods)

            await wait_for(replaced, timeout=15, what="pods of a evicted and replaced on b")
            stops["a"].clear()
            with contextlib.suppress(BaseException):
                beats["a"].cancel()
            lease = await c.get(cluster_pb2.Lease, "a", "kube-node-lease")
            await c.delete(cluster_pb2.Lease, "a", "kube-node-lease", uid=lease.metadata.uid)
            beats["a"] = asyncio.create_task(heartbeat(c, "a", stops["a"]))

            async def recovered() -> bool:
                n = await c.get(node_pb2.Node, "a")
                ready = next(x for x in n.status.conditions if x.type == "Ready")
                return ready.status == "True" and not [
                    t for t in n.spec.taints if t.key.startswith("node.kubernetes.io/")
                ]

            await wait_for(recovered, timeout=10, what="node a recovered")
            events = {e.reason for e in (await c.list(cluster_pb2.Event, "default")).items}
            assert {"NodeNotReady", "NodeReady"} <= events
        finally:
            for s in stops.values():
                s.set()
            for t in beats.values():
                t.cancel()
            await asyncio.gather(*beats.values(), return_exceptions=True)


async def test_node_ipam_distinct_and_persistent(tmp_path: Path) -> None:
    async with control_plane(tmp_path, nodes=3, scheduler=False, agent=False, controllers=["nodeipam"]) as cp:
        c = cp.client

        async def cidrs() -> dict[str, str]:
            return {n.metadata.name: n.spec.pod_cidr for n in (await c.list(node_pb2.Node)).items}

        async def all_set(k: int) -> bool:
            got = await cidrs()
            return len(got) == k and all(got.values())

        await wait_for(lambda: all_set(3), what="3 CIDRs")
        first = await cidrs()
        assert len(set(first.values())) == 3 and all(
            v.startswith("10.244.") and v.endswith("/24") for v in first.values()
        )
        n = await c.get(node_pb2.Node, "node0")
        assert list(n.spec.pod_cidrs) == [n.spec.pod_cidr]
        eps = cp.endpoints
    # a second control plane on a new store can't share state; instead restart the controller on the same store
    async with control_plane(
        tmp_path / "again", nodes=0, scheduler=False, agent=False, controllers=["nodeipam"]
    ) as cp2:
        c2 = cp2.client
        pre = make_node("pre")
        pre.spec.pod_cidr = "10.244.0.0/24"
        pre.spec.pod_cidrs.append("10.244.0.0/24")
        await create_node(c2, pre)
        await create_node(c2, make_node("fresh"))

        async def fresh_set() -> bool:
            return bool((await c2.get(node_pb2.Node, "fresh")).spec.pod_cidr)

        await wait_for(fresh_set, what="fresh CIDR")
        assert (await c2.get(node_pb2.Node, "fresh")).spec.pod_cidr == "10.244.1.0/24"
    del eps


async def test_not_ready_node_gets_not_ready_taints(tmp_path: Path) -> None:
    async with control_plane(tmp_path, nodes=0, scheduler=False, agent=False, controllers=["nodelifecycle"]) as cp:
        c = cp.client
        n = make_node("sick")
        n.status.conditions[0].status = "False"
        await create_node(c, n)

        async def tainted() -> bool:
            node = await c.get(node_pb2.Node, "sick")
            return {(t.key, t.effect) for t in node.spec.taints} == {
                ("node.kubernetes.io/not-ready", "NoSchedule"),
                ("node.kubernetes.io/not-ready", "NoExecute"),
            }

        await wait_for(tainted, what="not-ready taints")

        def heal(node: node_pb2.Node) -> None:
            node.status.conditions[0].status = "True"

        await c.mutate_status(node_pb2.Node, "sick", None, heal)

        async def clean() -> bool:
            return not (await c.get(node_pb2.Node, "sick")).spec.taints

        await wait_for(clean, what="taints removed")
