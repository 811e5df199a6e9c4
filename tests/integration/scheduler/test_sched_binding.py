"""The scheduler against a store: binding, unschedulable pods retried on cluster change, CAS conflicts."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from pinnace.api import cluster_pb2, pod_pb2
from pinnace.client import AsyncClient
from services.scheduler.scheduler import Scheduler
from tests.integration.scheduler.support import create_node, make_node, make_pod, running_store, wait_for


async def _bound(client: AsyncClient) -> dict[str, str]:
    pods = (await client.list(pod_pb2.Pod, "default")).items
    return {p.metadata.name: p.spec.node_name for p in pods if p.spec.node_name}


async def test_binds_pods_and_records_events(tmp_path: Path) -> None:
    async with running_store(tmp_path) as eps:
        client = AsyncClient(eps)
        for i in range(3):
            await create_node(client, make_node(f"n{i}", cpu="2"))
        sched = Scheduler(client, "t", seed=1)
        await sched.start()
        task = asyncio.create_task(sched.lead())
        try:
            for i in range(6):
                await client.create(make_pod(f"p{i}", cpu="500m"))

            async def all_bound() -> bool:
                return len(await _bound(client)) == 6

            await wait_for(all_bound, what="6 pods bound")
            assert Counter((await _bound(client)).values()) == Counter({"n0": 2, "n1": 2, "n2": 2})

            async def events() -> bool:
                evs = (await client.list(cluster_pb2.Event, "default")).items
                return sum(e.reason == "Scheduled" for e in evs) == 6

            await wait_for(events, what="Scheduled events")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await sched.stop()
            await client.close()


async def test_unschedulable_then_fits_when_a_node_arrives(tmp_path: Path) -> None:
    async with running_store(tmp_path) as eps:
        client = AsyncClient(eps)
        await create_node(client, make_node("small", cpu="1"))
        sched = Scheduler(client, "t")
        await sched.start()
        task = asyncio.create_task(sched.lead())
        try:
            await client.create(make_pod("big", cpu="3"))

            async def condition_set() -> bool:
                p = await client.get(pod_pb2.Pod, "big")
                return any(c.type == "PodScheduled" and c.status == "False" for c in p.status.conditions)

            await wait_for(condition_set, what="PodScheduled=False")
            p = await client.get(pod_pb2.Pod, "big")
            cond = next(c for c in p.status.conditions if c.type == "PodScheduled")
            assert cond.reason == "Unschedulable"
            assert cond.message == "0/1 nodes are available: 1 Insufficient cpu."

            async def failed_event() -> bool:
                evs = (await client.list(cluster_pb2.Event, "default")).items
                return any(e.reason == "FailedScheduling" and e.involved_object.name == "big" for e in evs)

            await wait_for(failed_event, what="FailedScheduling event")
            await create_node(client, make_node("large", cpu="8"))

            async def bound() -> bool:
                return (await _bound(client)).get("big") == "large"

            await wait_for(bound, timeout=5, what="pod bound after node added")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await sched.stop()
            await client.close()


async def test_two_active_schedulers_never_double_bind(tmp_path: Path) -> None:
    """Even with the Lease bypassed (two leaders at once), CAS binding binds each pod exactly once."""
    async with running_store(tmp_path) as eps:
        client = AsyncClient(eps)
        for i in range(4):
            await create_node(client, make_node(f"n{i}", cpu="16"))
        rev = await client.current_revision("pod")
        a, b = Scheduler(AsyncClient(eps), "a", seed=1), Scheduler(AsyncClient(eps), "b", seed=2)
        await a.start()
        await b.start()
        tasks = [asyncio.create_task(a.lead()), asyncio.create_task(b.lead())]
        try:
            await asyncio.gather(*(client.create(make_pod(f"p{i}", cpu="10m")) for i in range(60)))

            async def all_bound() -> bool:
                return len(await _bound(client)) == 60

            await wait_for(all_bound, what="60 pods bound")
            await asyncio.sleep(0.5)
            assert a.stats["bound"] + b.stats["bound"] == 60
            nodes: dict[str, set[str]] = {}
            async for ev in _history(client, rev):
                if ev.object.spec.node_name:
                    nodes.setdefault(ev.object.metadata.name, set()).add(ev.object.spec.node_name)
            assert len(nodes) == 60 and all(len(v) == 1 for v in nodes.values())
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for s in (a, b):
                await s.stop()
                await s.client.close()
            await client.close()


async def _history(client: AsyncClient, rev: int):  # type: ignore[no-untyped-def]
    """Every pod event since `rev` (until idle)."""
    it = client.watch(pod_pb2.Pod, None, rev).__aiter__()
    while True:
        try:
            ev = await asyncio.wait_for(it.__anext__(), 1.0)
        except (TimeoutError, StopAsyncIteration):
            return
        yield ev


async def test_pending_pod_retried_when_a_pod_goes_away(tmp_path: Path) -> None:
    async with running_store(tmp_path) as eps:
        client = AsyncClient(eps)
        await create_node(client, make_node("only", cpu="1"))
        sched = Scheduler(client, "t")
        await sched.start()
        task = asyncio.create_task(sched.lead())
        try:
            await client.create(make_pod("first", cpu="800m"))

            async def first_bound() -> bool:
                return (await _bound(client)).get("first") == "only"

            await wait_for(first_bound, what="first bound")
            await client.create(make_pod("second", cpu="800m"))

            async def parked() -> bool:
                return sched.queue.unschedulable_count == 1

            await wait_for(parked, what="second parked as unschedulable")
            await client.delete(pod_pb2.Pod, "first", "default", grace_period_seconds=0)

            async def second_bound() -> bool:
                return (await _bound(client)).get("second") == "only"

            await wait_for(second_bound, timeout=5, what="second bound once first is gone")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await sched.stop()
            await client.close()
