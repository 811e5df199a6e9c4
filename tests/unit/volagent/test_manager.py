"""VolumeManager without root: emptyDir/hostPath/gitRepo/PVC resolution, idempotence, teardown, eviction."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest

from pinnace.api import meta_pb2, pod_pb2, storage_pb2
from services.volagent.errors import VolumeError
from services.volagent.manager import VolumeManager
from services.volagent.state import PodRecord, VolumeRecord


class FakeLookup:
    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], storage_pb2.PersistentVolumeClaim] = {}
        self.volumes: dict[str, storage_pb2.PersistentVolume] = {}

    async def get_claim(self, namespace: str, name: str) -> storage_pb2.PersistentVolumeClaim | None:
        return self.claims.get((namespace, name))

    async def get_volume(self, name: str) -> storage_pb2.PersistentVolume | None:
        return self.volumes.get(name)


def make_pod(uid: str, *vols: pod_pb2.Volume, name: str = "p") -> pod_pb2.Pod:
    pod = pod_pb2.Pod(metadata=meta_pb2.ObjectMeta(name=name, namespace="default", uid=uid))
    pod.spec.volumes.extend(vols)
    return pod


def claim(name: str, phase: str = "Bound", volume: str = "", uid: str = "c-uid") -> storage_pb2.PersistentVolumeClaim:
    c = storage_pb2.PersistentVolumeClaim(metadata=meta_pb2.ObjectMeta(name=name, namespace="default", uid=uid))
    c.spec.volume_name = volume
    c.status.phase = phase
    return c


def pv(name: str, path: str, claim_name: str, uid: str = "c-uid") -> storage_pb2.PersistentVolume:
    v = storage_pb2.PersistentVolume(metadata=meta_pb2.ObjectMeta(name=name))
    v.spec.host_path.path = path
    v.spec.host_path.type = "DirectoryOrCreate"
    v.spec.claim_ref.namespace, v.spec.claim_ref.name, v.spec.claim_ref.uid = "default", claim_name, uid
    return v


async def test_emptydir_and_hostpath_then_teardown(tmp_path: Path) -> None:
    m = VolumeManager(str(tmp_path / "data"))
    hp = tmp_path / "host"
    pod = make_pod(
        "u1",
        pod_pb2.Volume(name="cache", empty_dir=pod_pb2.EmptyDirVolumeSource()),
        pod_pb2.Volume(name="host", host_path=pod_pb2.HostPathVolumeSource(path=str(hp), type="DirectoryOrCreate")),
    )
    out = await m.mount_pod(pod)
    cache = str(tmp_path / "data" / "pods" / "u1" / "volumes" / "cache")
    assert [(v.name, v.host_path) for v in out] == [("cache", cache), ("host", str(hp))]
    Path(cache, "f").write_text("x")
    again = await m.mount_pod(pod)
    assert again == out and Path(cache, "f").exists()
    assert [r.uid for r in m.records()] == ["u1"]
    (tmp_path / "data" / "pods" / "u1" / "logs").mkdir()  # the node agent's, must survive
    await m.unmount_pod("u1")
    await m.unmount_pod("u1")
    assert not os.path.exists(cache) and hp.is_dir()
    assert os.listdir(tmp_path / "data" / "pods" / "u1") == ["logs"]


async def test_bad_pods_are_invalid(tmp_path: Path) -> None:
    m = VolumeManager(str(tmp_path))
    ed = pod_pb2.EmptyDirVolumeSource()
    cases = [
        (make_pod("", pod_pb2.Volume(name="a", empty_dir=ed)), "no metadata.uid"),
        (make_pod("../x", pod_pb2.Volume(name="a", empty_dir=ed)), "not usable"),
        (make_pod("u", pod_pb2.Volume(name="a", empty_dir=ed), pod_pb2.Volume(name="a", empty_dir=ed)), "duplicate"),
        (make_pod("u", pod_pb2.Volume(name="a")), "has no volume source"),
        (make_pod("u", pod_pb2.Volume(name="Bad/Name", empty_dir=ed)), "DNS label"),
    ]
    for pod, msg in cases:
        with pytest.raises(VolumeError, match=msg) as ei:
            await m.mount_pod(pod)
        assert ei.value.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_pvc_resolution(tmp_path: Path) -> None:
    lk = FakeLookup()
    m = VolumeManager(str(tmp_path / "data"), lk)
    src = pod_pb2.PersistentVolumeClaimVolumeSource(claim_name="c")
    pod = make_pod("u2", pod_pb2.Volume(name="d", persistent_volume_claim=src))
    with pytest.raises(VolumeError, match="persistentvolumeclaim c not found"):
        await m.mount_pod(pod)
    lk.claims[("default", "c")] = claim("c", phase="Pending")
    with pytest.raises(VolumeError, match=r"persistentvolumeclaim c is not bound yet \(phase Pending\)") as ei:
        await m.mount_pod(pod)
    assert ei.value.code == grpc.StatusCode.FAILED_PRECONDITION
    lk.claims[("default", "c")] = claim("c", volume="pv1")
    with pytest.raises(VolumeError, match="which does not exist"):
        await m.mount_pod(pod)
    lk.volumes["pv1"] = pv("pv1", str(tmp_path / "pvdata"), "other")
    with pytest.raises(VolumeError, match="is not bound to it"):
        await m.mount_pod(pod)
    lk.volumes["pv1"] = pv("pv1", str(tmp_path / "pvdata"), "c")
    out = await m.mount_pod(pod)
    assert out[0].host_path == str(tmp_path / "pvdata") and (tmp_path / "pvdata").is_dir()
    local = storage_pb2.PersistentVolume(metadata=meta_pb2.ObjectMeta(name="pv1"))
    local.spec.local.path = str(tmp_path / "nope")
    local.spec.claim_ref.CopyFrom(lk.volumes["pv1"].spec.claim_ref)
    lk.volumes["pv1"] = local
    with pytest.raises(VolumeError, match=r"local volume d: path .* does not exist"):
        await m.mount_pod(pod)


async def test_size_check_evicts_once(tmp_path: Path) -> None:
    m = VolumeManager(str(tmp_path / "data"))
    src = pod_pb2.EmptyDirVolumeSource()
    src.size_limit.value = "1Mi"
    pod = make_pod("u3", pod_pb2.Volume(name="scratch", empty_dir=src))
    out = await m.mount_pod(pod)
    evicted: list[tuple[str, str, int]] = []

    async def evict(rec: PodRecord, vr: VolumeRecord, used: int) -> None:
        evicted.append((rec.name, vr.name, used))

    assert await m.check_sizes(evict) == 0
    Path(out[0].host_path, "blob").write_bytes(os.urandom(2 * 1024 * 1024))
    assert await m.check_sizes(evict) == 1
    assert await m.check_sizes(evict) == 0
    assert evicted[0][:2] == ("p", "scratch") and evicted[0][2] >= 2 * 1024 * 1024
