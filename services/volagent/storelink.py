"""The agent's store-backed pieces: claim/volume lookup for the PVC plugin and pod eviction."""

from __future__ import annotations

import grpc

from pinnace.api import pod_pb2, storage_pb2
from pinnace.client import AsyncClient, errors
from pinnace.client.events import EventRecorder
from pinnace.common.logging import get_logger
from pinnace.common.quantity import format_bytes
from services.volagent.errors import VolumeError
from services.volagent.state import PodRecord, VolumeRecord

log = get_logger("volagent.store")


class StoreLookup:
    """Live reads (never a stale cache: a pod must not start on a claim that was just unbound)."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def get_claim(self, namespace: str, name: str) -> storage_pb2.PersistentVolumeClaim | None:
        try:
            return await self.client.get(storage_pb2.PersistentVolumeClaim, name, namespace)
        except errors.NotFound:
            return None
        except errors.PinnaceError as exc:
            raise VolumeError(
                f"persistentvolumeclaim {name}: cannot read it: {exc}", grpc.StatusCode.UNAVAILABLE
            ) from exc

    async def get_volume(self, name: str) -> storage_pb2.PersistentVolume | None:
        try:
            return await self.client.get(storage_pb2.PersistentVolume, name, None)
        except errors.NotFound:
            return None
        except errors.PinnaceError as exc:
            raise VolumeError(f"persistentvolume {name}: cannot read it: {exc}", grpc.StatusCode.UNAVAILABLE) from exc


def human_bytes(n: int) -> str:
    """1.5Mi style: one decimal in the largest binary unit that fits."""
    for unit, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n}B"


def eviction_message(volume: str, limit_text: str, used: int) -> str:
    return f"emptyDir volume {volume} exceeded its sizeLimit {limit_text} (used {human_bytes(used)})"


class Evictor:
    """Evicts a pod like the kubelet: status Failed/Evicted with the reason, an Event, then delete."""

    def __init__(self, client: AsyncClient, node: str, recorder: EventRecorder) -> None:
        self.client = client
        self.node = node
        self.events = recorder

    async def __call__(self, rec: PodRecord, vr: VolumeRecord, used: int) -> None:
        msg = eviction_message(vr.name, vr.size_limit_text or format_bytes(vr.size_limit or 0), used)
        log.warning("evicting pod", pod=f"{rec.namespace}/{rec.name}", reason=msg)

        def fail(pod: pod_pb2.Pod) -> None:
            if pod.metadata.uid != rec.uid:
                raise errors.NotFound("a different pod now has this name")
            pod.status.phase, pod.status.reason, pod.status.message = "Failed", "Evicted", msg

        try:
            pod = await self.client.mutate_status(pod_pb2.Pod, rec.name, rec.namespace, fail)
        except errors.NotFound:
            return
        self.events.emit(pod, "Warning", "Evicted", msg)
        try:
            await self.client.delete(pod_pb2.Pod, rec.name, rec.namespace, uid=rec.uid)
        except errors.NotFound:
            pass
