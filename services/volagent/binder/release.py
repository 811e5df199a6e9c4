"""What happens to a volume whose claim is gone: phase Released, then its reclaim policy.

Retain keeps it Released with its data (`pinnace pv rebind` gives it to a new claim). Delete
removes the data and the PV; Recycle scrubs the data and makes it Available again. Data on
another node (a PV pinned there by node affinity) is handled by that node's volagent
(services/volagent/reclaimer.py) through the pinnace.io/reclaim annotation; the binder finishes
once it reads "Done".
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from pinnace.api import storage_pb2
from pinnace.client import errors
from services.volagent import metrics
from services.volagent.binder import matching as mt
from services.volagent.binder import reclaim

if TYPE_CHECKING:
    from services.volagent.binder.controller import Binder

PV = storage_pb2.PersistentVolume


def _copy(pv: PV) -> PV:
    new = PV()
    new.CopyFrom(pv)
    return new


async def handle_released(b: Binder, pv: PV) -> float | None:
    if pv.status.phase == "Failed":
        return None
    if pv.status.phase != "Released":
        ref = pv.spec.claim_ref
        pv = await b.set_phase(pv, "Released", "", f"claim {ref.namespace}/{ref.name} was deleted")
        b.events.emit(pv, "Normal", "VolumeReleased", f"claim {ref.namespace}/{ref.name} was deleted")
    policy = pv.spec.persistent_volume_reclaim_policy or "Retain"
    if policy == "Retain":
        return None
    try:
        if policy not in ("Delete", "Recycle"):
            raise reclaim.ReclaimError(f"unknown reclaim policy {policy!r}")
        reclaim.data_path(pv)  # NFS and source-less volumes fail here, before anything is asked of a node
        node = mt.pinned_node(pv)
        if node and b.node_name and node != b.node_name:
            state = pv.metadata.annotations.get(reclaim.RECLAIM_ANNOTATION, "")
            if state != reclaim.RECLAIM_DONE:
                if state != policy:
                    new = _copy(pv)
                    new.metadata.annotations[reclaim.RECLAIM_ANNOTATION] = policy
                    await b.write(new)
                    b.events.emit(pv, "Normal", "ReclaimRequested", f"asked node {node} to {policy.lower()} the data")
                return None  # the node's answer (an update of the PV) brings us back
        else:
            fn = reclaim.delete_data if policy == "Delete" else reclaim.scrub_data
            await asyncio.to_thread(fn, pv, b.reclaim_roots)
        metrics.RECLAIMED.labels(policy).inc()
        if policy == "Delete":
            try:
                await b.client.delete(PV, pv.metadata.name, None, resource_version=pv.metadata.resource_version)
            except errors.NotFound:
                pass
            b.events.emit(pv, "Normal", "VolumeDeleted", f"deleted volume {pv.metadata.name} and its data")
            return None
        new = _copy(pv)
        new.spec.ClearField("claim_ref")
        new.metadata.annotations.pop(mt.BOUND_BY_CONTROLLER, None)
        new.metadata.annotations.pop(reclaim.RECLAIM_ANNOTATION, None)
        pv = await b.write(new)
        await b.set_phase(pv, "Available")
        b.events.emit(pv, "Normal", "VolumeRecycled", f"volume {pv.metadata.name} scrubbed and available")
        return None
    except (reclaim.ReclaimError, OSError) as exc:
        reason = "VolumeFailedDelete" if policy == "Delete" else "VolumeFailedReclaim"
        await b.set_phase(pv, "Failed", reason, str(exc))
        b.events.emit(pv, "Warning", reason, str(exc))
        return None
