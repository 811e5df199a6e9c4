"""A running mini control plane for controller tests: a real store, the controllers (in-process, fast
lease and monitor settings), optionally the scheduler and the fake node agent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from pinnace.client import AsyncClient
from services.controllers.base import Options
from services.controllers.manager import Manager
from services.scheduler.scheduler import Scheduler
from tests.integration.scheduler.support import FakeNodeAgent, create_node, make_node, running_store


@dataclass
class Plane:
    client: AsyncClient
    endpoints: list[str]
    manager: Manager
    agent: FakeNodeAgent | None


@contextlib.asynccontextmanager
async def control_plane(
    tmp_path: Path,
    nodes: int = 2,
    scheduler: bool = True,
    agent: bool = True,
    agent_delay: float = 0.0,
    options: Options | None = None,
    controllers: list[str] | None = None,
) -> AsyncIterator[Plane]:
    async with running_store(tmp_path) as eps:
        client = AsyncClient(eps)
        for i in range(nodes):
            await create_node(client, make_node(f"node{i}", cpu="8"))
        opts = options or Options(monitor_period=0.5)
        manager = Manager(AsyncClient(eps), "test", opts, controllers, lease_duration=3.0, renew_interval=0.5)
        tasks = [asyncio.create_task(manager.run())]
        sched = None
        if scheduler:
            sched = Scheduler(AsyncClient(eps), "test-sched", events=False)
            await sched.start()
            tasks.append(asyncio.create_task(sched.lead()))
        fake = FakeNodeAgent(AsyncClient(eps), delay=agent_delay) if agent else None
        if fake is not None:
            await fake.start()
        try:
            yield Plane(client, eps, manager, fake)
        finally:
            manager.stop()
            if fake is not None:
                await fake.stop()
            await asyncio.sleep(0)
            for t in tasks[1:]:
                t.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(tasks[0], 5)
            await asyncio.gather(*tasks, return_exceptions=True)
            if sched is not None:
                await sched.stop()
            await client.close()
