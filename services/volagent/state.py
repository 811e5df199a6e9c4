"""The per-pod record of what the agent set up, kept as JSON next to the pod's volumes.

It survives agent restarts: the size watcher and UnmountVolumes read it back. Unmounting
itself does not depend on it (the mount table is the truth), so a lost record never leaks
a mount.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field


@dataclass
class VolumeRecord:
    name: str
    type: str  # emptyDir, gitRepo, nfs, hostPath, persistentVolumeClaim
    host_path: str
    read_only: bool = False
    # emptyDir on disk with sizeLimit: bytes allowed (enforced by the size watcher).
    size_limit: int | None = None
    size_limit_text: str = ""


@dataclass
class PodRecord:
    namespace: str
    name: str
    uid: str
    volumes: dict[str, VolumeRecord] = field(default_factory=dict)
    evicted: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PodRecord:
        raw = json.loads(text)
        vols = {k: VolumeRecord(**v) for k, v in raw.get("volumes", {}).items()}
        return cls(raw["namespace"], raw["name"], raw["uid"], vols, bool(raw.get("evicted", False)))


def save(path: str, record: PodRecord) -> None:
    """Write atomically (tmp file + rename) so a crash never leaves half a record."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(record.to_json())
    os.replace(tmp, path)


def load(path: str) -> PodRecord | None:
    try:
        with open(path, encoding="utf-8") as f:
            return PodRecord.from_json(f.read())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None
