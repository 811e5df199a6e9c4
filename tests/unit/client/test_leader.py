"""LeaderElector against the FakeStore: one leader at a time, takeover on release and on expiry."""

from __future__ import annotations

import asyncio

from pinnace.api import cluster_pb2
from pinnace.client import AsyncClient, LeaderElector


async def test_single_leader_and_handover(client: AsyncClient) -> None:
    events: list[str] = []
    a = LeaderElector(client, "ctrl", "a", lease_duration=1.0, renew_interval=0.2, retry_interval=0.05)
    b = LeaderElector(client, "ctrl", "b", lease_duration=1.0, renew_interval=0.2, retry_interval=0.05)

    async def lead(who: str) -> None:
        events.append(f"start {who}")
        await asyncio.Event().wait()

    ta = asyncio.create_task(a.run(lambda: lead("a"), lambda: events.append("stop a")))
    await asyncio.sleep(0.2)
    tb = asyncio.create_task(b.run(lambda: lead("b"), lambda: events.append("stop b")))
    await asyncio.sleep(0.5)
    assert a.is_leader and not b.is_leader
    assert events == ["start a"]
    lease = await client.get(cluster_pb2.Lease, "ctrl", "pinnace-system")
    assert lease.spec.holder_identity == "a"
    token_a = a.fencing_token

    a.stop()  # releases the lease: b takes over promptly
    await asyncio.wait_for(ta, 2)
    await asyncio.sleep(0.3)
    assert b.is_leader
    assert events == ["start a", "stop a", "start b"]
    assert b.fencing_token > token_a
    lease = await client.get(cluster_pb2.Lease, "ctrl", "pinnace-system")
    assert lease.spec.holder_identity == "b" and lease.spec.lease_transitions >= 1
    b.stop()
    await asyncio.wait_for(tb, 2)


async def test_takeover_after_expiry(client: AsyncClient) -> None:
    lease = cluster_pb2.Lease()
    lease.metadata.name = "x"
    lease.metadata.namespace = "pinnace-system"
    lease.spec.holder_identity = "dead"
    lease.spec.lease_duration_seconds = 1
    lease.spec.renew_time.GetCurrentTime()
    await client.create(lease)
    e = LeaderElector(client, "x", "me", lease_duration=1.0, renew_interval=0.2, retry_interval=0.1)
    started = asyncio.Event()
    task = asyncio.create_task(e.run(started.set))
    await asyncio.wait_for(started.wait(), 4)
    assert e.is_leader and e.holder == "me"
    e.stop()
    await asyncio.wait_for(task, 2)


async def test_deposed_leader_steps_down(client: AsyncClient) -> None:
    e = LeaderElector(client, "y", "me", lease_duration=1.0, renew_interval=0.1, retry_interval=5)
    stopped = asyncio.Event()
    task = asyncio.create_task(e.run(None, stopped.set))
    await asyncio.sleep(0.2)
    assert e.is_leader

    def steal(lease: cluster_pb2.Lease) -> None:
        lease.spec.holder_identity = "thief"
        lease.spec.renew_time.GetCurrentTime()

    await client.mutate(cluster_pb2.Lease, "y", "pinnace-system", steal)
    await asyncio.wait_for(stopped.wait(), 2)
    assert not e.is_leader
    e.stop()
    await asyncio.wait_for(task, 2)
