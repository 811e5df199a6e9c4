"""Sets up and tears down a pod's volumes; idempotent, per pod serialized, restart-safe."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc

from pinnace.api import pod_pb2
from pinnace.common.logging import get_logger
from pinnace.common.quantity import QuantityError, to_bytes
from services.volagent import metrics, mounts, state
from services.volagent.errors import VolumeError
from services.volagent.layout import Layout
from services.volagent.plugins import emptydir, gitrepo, hostpath, nfs, pvc
from services.volagent.state import PodRecord, VolumeRecord

log = get_logger("volagent.manager")

SOURCES = ("host_path", "empty_dir", "git_repo", "nfs", "persistent_volume_claim")
TYPE_NAMES = {
    "host_path": "hostPath",
    "empty_dir": "emptyDir",
    "git_repo": "gitRepo",
    "nfs": "nfs",
    "persistent_volume_claim": "persistentVolumeClaim",
}

# (record, volume record, bytes used) -> evict the pod
Evictor = Callable[[PodRecord, VolumeRecord, int], Awaitable[None]]


@dataclass
class Mounted:
    name: str
    host_path: str
    read_only: bool


class VolumeManager:
    """The logic behind the Volumes service."""

    def __init__(self, data_dir: str, lookup: pvc.ClaimLookup | None = None) -> None:
        self.layout = Layout(data_dir)
        self.lookup = lookup
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, uid: str) -> asyncio.Lock:
        lock = self._locks.get(uid)
        if lock is None:
            lock = self._locks[uid] = asyncio.Lock()
        return lock

    async def mount_pod(self, pod: pod_pb2.Pod) -> list[Mounted]:
        with metrics.MOUNT_SECONDS.time():
            return await self._mount_pod(pod)

    async def _mount_pod(self, pod: pod_pb2.Pod) -> list[Mounted]:
        uid = pod.metadata.uid
        if not uid:
            raise VolumeError("pod has no metadata.uid", grpc.StatusCode.INVALID_ARGUMENT)
        try:
            self.layout.check_pod(uid)
            names = [v.name for v in pod.spec.volumes]
            for n in names:
                self.layout.volume_dir(uid, n)
        except ValueError as exc:
            raise VolumeError(str(exc), grpc.StatusCode.INVALID_ARGUMENT) from exc
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise VolumeError(f"duplicate volume name(s): {', '.join(dup)}", grpc.StatusCode.INVALID_ARGUMENT)
        async with self._lock(uid):
            record = state.load(self.layout.record_path(uid)) or PodRecord(
                pod.metadata.namespace, pod.metadata.name, uid
            )
            os.makedirs(self.layout.volumes_dir(uid), exist_ok=True)
            state.save(self.layout.record_path(uid), record)
            out: list[Mounted] = []
            for vol in pod.spec.volumes:
                kind = next((TYPE_NAMES[s] for s in SOURCES if vol.HasField(s)), "none")  # type: ignore[arg-type]
                try:
                    vr = await self._setup(pod, vol)
                except VolumeError:
                    metrics.MOUNT_ERRORS.labels(kind).inc()
                    raise
                metrics.MOUNTS.labels(kind).inc()
                record.volumes[vol.name] = vr
                out.append(Mounted(vol.name, vr.host_path, vr.read_only))
            state.save(self.layout.record_path(uid), record)
            return out

    async def _setup(self, pod: pod_pb2.Pod, vol: pod_pb2.Volume) -> VolumeRecord:
        set_sources = [s for s in SOURCES if vol.HasField(s)]  # type: ignore[arg-type]
        if len(set_sources) != 1:
            what = "no volume source" if not set_sources else f"several sources ({', '.join(set_sources)})"
            raise VolumeError(f"volume {vol.name} has {what}", grpc.StatusCode.INVALID_ARGUMENT)
        kind = set_sources[0]
        uid, name = pod.metadata.uid, vol.name
        path = self.layout.volume_dir(uid, name)
        rec = VolumeRecord(name=name, type=TYPE_NAMES[kind], host_path=path)
        if kind == "empty_dir":
            ed = vol.empty_dir
            limit = None
            if ed.HasField("size_limit") and ed.size_limit.value:
                try:
                    limit = to_bytes(ed.size_limit.value)
                except QuantityError as exc:
                    raise VolumeError(
                        f"emptyDir volume {name}: sizeLimit: {exc}", grpc.StatusCode.INVALID_ARGUMENT
                    ) from exc
            emptydir.setup(name, path, ed.medium, limit)  # fast: mkdir (+ mount); keep it on the loop
            if ed.medium != "Memory" and limit:
                rec.size_limit, rec.size_limit_text = limit, ed.size_limit.value
        elif kind == "host_path":
            rec.host_path = await asyncio.to_thread(hostpath.setup, name, vol.host_path.path, vol.host_path.type)
        elif kind == "git_repo":
            g = vol.git_repo
            await asyncio.to_thread(gitrepo.setup, name, path, g.repository, g.revision, g.directory)
        elif kind == "nfs":
            n = vol.nfs
            await asyncio.to_thread(nfs.setup, name, path, n.server, n.path, n.read_only, [])
            rec.read_only = n.read_only
        else:
            await self._setup_claim(pod, vol, rec)
        return rec

    async def _setup_claim(self, pod: pod_pb2.Pod, vol: pod_pb2.Volume, rec: VolumeRecord) -> None:
        if self.lookup is None:
            raise VolumeError("persistentVolumeClaim volumes need a store connection", grpc.StatusCode.UNAVAILABLE)
        src = vol.persistent_volume_claim
        source = await pvc.resolve(vol.name, pod.metadata.namespace, src.claim_name, self.lookup)
        rec.read_only = src.read_only
        what = f"persistentvolume {source.pv_name}"
        if source.kind == "hostPath":
            rec.host_path = await asyncio.to_thread(hostpath.setup, vol.name, source.path, source.type, what=what)
        elif source.kind == "local":
            rec.host_path = await asyncio.to_thread(hostpath.setup_local, vol.name, source.path)
        else:
            ro = src.read_only or source.read_only
            await asyncio.to_thread(
                nfs.setup, vol.name, rec.host_path, source.server, source.path, ro, source.mount_options
            )
            rec.read_only = ro

    async def unmount_pod(self, uid: str) -> None:
        """Unmount and remove everything under the pod's volumes directory; idempotent."""
        try:
            self.layout.check_pod(uid)
        except ValueError as exc:
            raise VolumeError(str(exc), grpc.StatusCode.INVALID_ARGUMENT) from exc
        async with self._lock(uid):
            await asyncio.to_thread(self._teardown, uid)
        self._locks.pop(uid, None)

    def _teardown(self, uid: str) -> None:
        vdir = self.layout.volumes_dir(uid)
        try:
            mounts.unmount_all_under(vdir)
        except OSError as exc:
            raise VolumeError(f"cannot unmount volumes of pod {uid}: {exc}", grpc.StatusCode.UNAVAILABLE) from exc
        shutil.rmtree(vdir, ignore_errors=True)
        if os.path.lexists(vdir):
            raise VolumeError(f"cannot remove {vdir}", grpc.StatusCode.UNAVAILABLE)
        try:
            os.unlink(self.layout.record_path(uid))
        except FileNotFoundError:
            pass
        try:
            os.rmdir(self.layout.pod_dir(uid))  # only if the node agent left nothing else there
        except OSError:
            pass
        metrics.UNMOUNTS.inc()
        log.info("volumes torn down", uid=uid)

    def records(self) -> list[PodRecord]:
        out = []
        try:
            uids = os.listdir(self.layout.pods_dir)
        except FileNotFoundError:
            return []
        for uid in uids:
            try:
                rec = state.load(self.layout.record_path(uid))
            except ValueError:
                continue
            if rec is not None:
                out.append(rec)
        return out

    async def check_sizes(self, evict: Evictor) -> int:
        """One pass of the emptyDir sizeLimit check; returns how many pods were evicted."""
        evicted = 0
        for rec in self.records():
            if rec.evicted:
                continue
            for vr in rec.volumes.values():
                if not vr.size_limit:
                    continue
                used = await asyncio.to_thread(emptydir.usage_bytes, vr.host_path)
                if used > vr.size_limit:
                    await evict(rec, vr, used)
                    metrics.EVICTIONS.inc()
                    rec.evicted = True
                    async with self._lock(rec.uid):
                        if os.path.isdir(self.layout.pod_dir(rec.uid)):
                            state.save(self.layout.record_path(rec.uid), rec)
                    evicted += 1
                    break
        return evicted
