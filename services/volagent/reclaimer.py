"""Per-node reclaim: deletes or scrubs the data of Released volumes pinned to this node.

Runs in every volagent (the binder runs on one node only, and hostPath/local data lives on the
node the PV is pinned to). The binder asks by setting the annotation pinnace.io/reclaim to the
policy; this answers "Done" once the data is gone, or sets the PV Failed with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib

from pinnace.api import storage_pb2
from pinnace.client import AsyncClient, Informer, WorkQueue, errors, run_workers
from pinnace.common.logging import get_logger
from services.volagent.binder import matching as mt
from services.volagent.binder import reclaim

log = get_logger("volagent.reclaimer")
PV = storage_pb2.PersistentVolume


class NodeReclaimer:
    def __init__(self, client: AsyncClient, node_name: str, roots: list[str]) -> None:
        self.client = client
        self.node = node_name
        self.roots = roots
        self.queue: WorkQueue[str] = WorkQueue("node-reclaimer")
        self.pvs: Informer[PV] = Informer(client, PV)
        self.pvs.add_handler(on_add=self._event, on_update=lambda _o, n: self._event(n))
        self.done = 0

    def _wanted(self, pv: PV) -> str:
        state = pv.metadata.annotations.get(reclaim.RECLAIM_ANNOTATION, "")
        if state in ("Delete", "Recycle") and mt.pinned_node(pv) == self.node and pv.status.phase == "Released":
            return state
        return ""

    def _event(self, pv: PV) -> None:
        if self._wanted(pv):
            self.queue.add(pv.metadata.name)

    async def reconcile(self, name: str) -> None:
        try:
            pv = await self.client.get(PV, name, None)
        except errors.NotFound:
            return
        policy = self._wanted(pv)
        if not policy:
            return
        fn = reclaim.delete_data if policy == "Delete" else reclaim.scrub_data
        try:
            await asyncio.to_thread(fn, pv, self.roots)
        except (reclaim.ReclaimError, OSError) as exc:
            pv.status.phase, pv.status.reason, pv.status.message = (
                "Failed",
                "VolumeFailedReclaim",
                f"{self.node}: {exc}",
            )
            await self.client.update_status(pv)
            log.warning("reclaim failed", pv=name, error=str(exc))
            return
        pv.metadata.annotations[reclaim.RECLAIM_ANNOTATION] = reclaim.RECLAIM_DONE
        await self.client.update(pv)  # CAS: a concurrent change makes us retry from fresh state
        self.done += 1
        log.info("reclaimed volume data", pv=name, policy=policy)

    async def run(self) -> None:
        await self.pvs.start()
        try:
            await self.pvs.wait_synced()
            await run_workers(self.queue, self.reconcile, 2, name="node-reclaimer")
        finally:
            self.queue.shutdown()
            with contextlib.suppress(Exception):
                await self.pvs.stop()
