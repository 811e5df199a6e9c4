"""Failover against a 3-replica store: with one replica killed (leader or not), the SDK carries on
on the others, and an informer resumes its watch on another replica without missing anything."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinnace.api import pod_pb2
from pinnace.client import AsyncClient, Informer, errors
from tests.support.store import StoreCluster, start_store


@pytest.fixture
def store3(tmp_path: Path) -> Iterator[StoreCluster]:
    cluster = start_store(tmp_path, replicas=3)
    yield cluster
    cluster.stop()


def pod(name: str) -> pod_pb2.Pod:
    p = pod_pb2.Pod()
    p.metadata.name = name
    p.metadata.namespace = "default"
    p.spec.containers.add(name="c", image="busybox")
    return p


async def create_surely(client: AsyncClient, p: pod_pb2.Pod) -> None:
    """Create p; while a leader is being elected a create may time out (it may or may not have
    happened, so the SDK does not retry it): try again, and AlreadyExists counts as done."""
    for _ in range(20):
        try:
            await client.create(p)
            return
        except errors.AlreadyExists:
            return
        except errors.Timeout:
            continue
    raise AssertionError(f"could not create {p.metadata.name}")


async def test_client_and_informer_fail_over(store3: StoreCluster) -> None:
    client = AsyncClient(store3.endpoints, timeout=3, retry_timeout=60)
    inf: Informer[pod_pb2.Pod] = Informer(client, pod_pb2.Pod)
    try:
        for i in range(5):
            await client.create(pod(f"a{i}"))
        await inf.start()
        assert await inf.wait_synced(30)
        # Kill the replica the client is using, then the leader if it is another one.
        victims = [store3.endpoints.index(client.current_endpoint)]
        leader = store3.leader()
        if leader not in victims:
            victims.append(leader)
        store3.kill(victims[0])
        for i in range(5, 10):
            await create_surely(client, pod(f"a{i}"))
        store3.restart(victims[0])
        if len(victims) > 1:
            store3.kill(victims[1])
        for i in range(10, 15):
            await create_surely(client, pod(f"a{i}"))
        await client.delete(pod_pb2.Pod, "a0")
        want = {f"default/a{i}" for i in range(1, 15)}
        for _ in range(300):
            if set(inf.keys()) == want:
                break
            await asyncio.sleep(0.1)
        assert set(inf.keys()) == want
        listed = await client.list(pod_pb2.Pod)
        assert {f"default/{p.metadata.name}" for p in listed.items} == want
    finally:
        await inf.stop()
        await client.close()


async def test_informer_leaves_a_hung_replica(store3: StoreCluster) -> None:
    client = AsyncClient(store3.endpoints, timeout=3, retry_timeout=60)
    admin: AsyncClient | None = None
    inf: Informer[pod_pb2.Pod] = Informer(client, pod_pb2.Pod, watch_idle_timeout=3.0)
    try:
        await inf.start()
        assert await inf.wait_synced(30)
        hung = store3.endpoints.index(client.current_endpoint)
        store3.pause(hung)  # SIGSTOP: the connection stays open, nothing arrives, no error
        try:
            others = [e for i, e in enumerate(store3.endpoints) if i != hung]
            admin = AsyncClient(others, timeout=3, retry_timeout=60)
            # If the paused replica was the leader, writes time out until a new one is elected.
            await create_surely(admin, pod("while-hung"))
            for _ in range(300):
                if inf.get("default/while-hung") is not None:
                    break
                await asyncio.sleep(0.1)
            assert inf.get("default/while-hung") is not None
            assert client.current_endpoint != store3.endpoints[hung]
        finally:
            store3.resume(hung)
    finally:
        await inf.stop()
        await client.close()
        if admin is not None:
            await admin.close()
