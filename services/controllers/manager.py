"""Builds the controllers of one process and runs each under its own LeaderElector."""

from __future__ import annotations

import asyncio
import contextlib

from pinnace.client import AsyncClient, LeaderElector
from pinnace.client.events import EventRecorder
from services.controllers.base import Context, Controller, Options, SharedInformers
from services.controllers.deployment import DeploymentController
from services.controllers.endpoints import EndpointsController
from services.controllers.garbagecollector import GarbageCollector
from services.controllers.nodeipam import NodeIpamController
from services.controllers.nodelifecycle import NodeLifecycleController
from services.controllers.replicaset import ReplicaSetController

ALL: dict[str, type[Controller]] = {
    "replicaset": ReplicaSetController,
    "deployment": DeploymentController,
    "endpoints": EndpointsController,
    "nodelifecycle": NodeLifecycleController,
    "nodeipam": NodeIpamController,
    "garbagecollector": GarbageCollector,
}


class Manager:
    """The controllers of this process, their shared informers and event recorder."""

    def __init__(
        self,
        client: AsyncClient,
        identity: str,
        options: Options | None = None,
        enabled: list[str] | None = None,
        lease_duration: float = 15.0,
        renew_interval: float = 5.0,
    ) -> None:
        self.client = client
        self.identity = identity
        self.informers = SharedInformers(client)
        self.recorder = EventRecorder(client, "controller-manager", identity)
        ctx = Context(client, self.informers, self.recorder, options or Options())
        names = enabled or list(ALL)
        self.controllers: dict[str, Controller] = {n: ALL[n](ctx) for n in names}
        self.electors = {
            n: LeaderElector(
                client,
                f"controller-{n}",
                identity,
                lease_duration=lease_duration,
                renew_interval=renew_interval,
            )
            for n in names
        }

    def stop(self) -> None:
        for e in self.electors.values():
            e.stop()

    async def run(self) -> None:
        """Sync the informers, then compete for each controller's Lease until stop()."""
        await self.informers.start()
        rec = asyncio.create_task(self.recorder.run(workers=4))
        try:
            await asyncio.gather(*(self.electors[n].run(c.lead) for n, c in self.controllers.items()))
        finally:
            rec.cancel()
            with contextlib.suppress(BaseException):
                await rec
            await self.informers.stop()
