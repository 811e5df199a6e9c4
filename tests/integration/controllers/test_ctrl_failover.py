"""Two controller managers: each controller is active in exactly one, and the other takes over when the
active one goes away."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from pinnace.api import apps_pb2, cluster_pb2
from pinnace.client import AsyncClient
from services.controllers.base import Options
from services.controllers.manager import Manager
from tests.integration.controllers.test_ctrl_replicaset import make_rs, owned
from tests.integration.scheduler.support import running_store, wait_for


async def test_controllers_fail_over(tmp_path: Path) -> None:
    async with running_store(tmp_path) as eps:
        c = AsyncClient(eps)
        names = ["replicaset", "garbagecollector"]
        managers = {
            ident: Manager(AsyncClient(eps), ident, Options(), names, lease_duration=2.0, renew_interval=0.3)
            for ident in ("m1", "m2")
        }
        tasks = {ident: asyncio.create_task(m.run()) for ident, m in managers.items()}
        try:

            async def holders() -> dict[str, str]:
                out = {}
                for n in names:
                    with contextlib.suppress(Exception):
                        lease = await c.get(cluster_pb2.Lease, f"controller-{n}", "pinnace-system")
                        out[n] = lease.spec.holder_identity
                return out

            async def all_held() -> bool:
                h = await holders()
                return len(h) == len(names) and all(h.values())

            await wait_for(all_held, what="every controller has a leader")
            await asyncio.sleep(1.0)
            for n in names:
                active = [ident for ident, m in managers.items() if m.controllers[n].leading]
                assert len(active) == 1, f"{n} active in {active}"
            first = (await holders())["replicaset"]
            await c.create(make_rs("web", 2))

            async def count(k: int) -> bool:
                return len(await owned(c, "web")) == k

            await wait_for(lambda: count(2), what="2 pods")
            tasks[first].cancel()  # the active manager dies without releasing its leases
            await asyncio.gather(tasks[first], return_exceptions=True)
            await c.mutate(apps_pb2.ReplicaSet, "web", "default", lambda rs: setattr(rs.spec, "replicas", 4))
            await wait_for(lambda: count(4), timeout=20, what="the standby scaled to 4")
            other = "m2" if first == "m1" else "m1"
            assert (await holders())["replicaset"] == other
        finally:
            for m in managers.values():
                m.stop()
            for t in tasks.values():
                t.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            await c.close()
