"""persistentVolumeClaim: resolve claim -> bound PersistentVolume -> its source (hostPath, local, nfs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from pinnace.api import storage_pb2
from services.volagent.errors import VolumeError


class ClaimLookup(Protocol):
    """Reads claims and volumes from the store (or a cache); None when absent."""

    async def get_claim(self, namespace: str, name: str) -> storage_pb2.PersistentVolumeClaim | None: ...

    async def get_volume(self, name: str) -> storage_pb2.PersistentVolume | None: ...


@dataclass
class Source:
    """What a bound PV points at."""

    kind: str  # hostPath, local, nfs
    pv_name: str
    path: str
    type: str = ""  # hostPath type
    server: str = ""
    read_only: bool = False
    mount_options: list[str] = field(default_factory=list)


async def resolve(volume: str, namespace: str, claim_name: str, lookup: ClaimLookup) -> Source:
    """The source behind the claim; FAILED_PRECONDITION (caller retries) while it is not usable."""
    if not claim_name:
        raise VolumeError(f"persistentVolumeClaim volume {volume}: claimName is empty")
    claim = await lookup.get_claim(namespace, claim_name)
    if claim is None:
        raise VolumeError(f"persistentvolumeclaim {claim_name} not found")
    if claim.metadata.HasField("deletion_timestamp"):
        raise VolumeError(f"persistentvolumeclaim {claim_name} is being deleted")
    phase = claim.status.phase or "Pending"
    if phase != "Bound" or not claim.spec.volume_name:
        raise VolumeError(f"persistentvolumeclaim {claim_name} is not bound yet (phase {phase})")
    pv = await lookup.get_volume(claim.spec.volume_name)
    if pv is None:
        raise VolumeError(
            f"persistentvolumeclaim {claim_name} is bound to persistentvolume {claim.spec.volume_name}, "
            "which does not exist"
        )
    ref = pv.spec.claim_ref
    if ref.name != claim_name or ref.namespace != namespace or (ref.uid and ref.uid != claim.metadata.uid):
        raise VolumeError(
            f"persistentvolumeclaim {claim_name}: persistentvolume {pv.metadata.name} is not bound to it "
            f"(claimRef {ref.namespace}/{ref.name})"
        )
    spec = pv.spec
    opts = list(spec.mount_options)
    name = pv.metadata.name
    if spec.HasField("host_path"):
        return Source("hostPath", name, spec.host_path.path, type=spec.host_path.type, mount_options=opts)
    if spec.HasField("local"):
        return Source("local", name, spec.local.path, mount_options=opts)
    if spec.HasField("nfs"):
        return Source(
            "nfs", name, spec.nfs.path, server=spec.nfs.server, read_only=spec.nfs.read_only, mount_options=opts
        )
    raise VolumeError(f"persistentvolume {name} has no volume source this node supports (hostPath, local, nfs)")
