"""LeaderElector on a real store: one leader among three candidates; handover on stop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinnace.client import AsyncClient, LeaderElector
from tests.support.store import StoreCluster, start_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StoreCluster]:
    cluster = start_store(tmp_path)
    yield cluster
    cluster.stop()


async def test_one_leader_then_handover(store: StoreCluster) -> None:
    client = AsyncClient(store.endpoints, retry_timeout=30)
    leading: set[str] = set()
    overlaps: list[set[str]] = []

    def started(who: str) -> None:
        leading.add(who)
        if len(leading) > 1:
            overlaps.append(set(leading))

    electors = {
        name: LeaderElector(client, "bench-ctl", name, lease_duration=2.0, renew_interval=0.5, retry_interval=0.2)
        for name in ("a", "b", "c")
    }
    tasks = {
        name: asyncio.create_task(e.run(lambda n=name: started(n), lambda n=name: leading.discard(n)))
        for name, e in electors.items()
    }
    try:
        for _ in range(100):
            if leading:
                break
            await asyncio.sleep(0.1)
        assert len(leading) == 1
        first = next(iter(leading))
        await asyncio.sleep(1.5)  # renewals keep it
        assert leading == {first}
        electors[first].stop()
        await asyncio.wait_for(tasks[first], 5)
        for _ in range(100):
            if leading:
                break
            await asyncio.sleep(0.1)
        assert len(leading) == 1 and first not in leading
        assert not overlaps
    finally:
        for e in electors.values():
            e.stop()
        await asyncio.wait_for(asyncio.gather(*tasks.values(), return_exceptions=True), 10)
        await client.close()
