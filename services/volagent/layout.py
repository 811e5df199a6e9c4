"""Where the volume agent keeps things under the node's data directory."""

from __future__ import annotations

import os
import re

_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def check_uid(uid: str) -> str:
    """A pod uid safe to use as one path component (no /, no ..)."""
    if not uid or not _UID.match(uid) or uid in (".", ".."):
        raise ValueError(f"pod uid {uid!r} is not usable as a directory name")
    return uid


def check_volume_name(name: str) -> str:
    if not name or len(name) > 253 or not _NAME.match(name):
        raise ValueError(f"volume name {name!r} must be a DNS label (lowercase letters, digits, '-', '.')")
    return name


class Layout:
    """<data-dir>/pods/<uid>/volumes/<name> and the agent's per-pod record next to it."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = os.path.abspath(data_dir)

    @property
    def pods_dir(self) -> str:
        return os.path.join(self.data_dir, "pods")

    def check_pod(self, uid: str) -> None:
        check_uid(uid)

    def pod_dir(self, uid: str) -> str:
        return os.path.join(self.pods_dir, check_uid(uid))

    def volumes_dir(self, uid: str) -> str:
        return os.path.join(self.pod_dir(uid), "volumes")

    def volume_dir(self, uid: str, name: str) -> str:
        return os.path.join(self.volumes_dir(uid), check_volume_name(name))

    def record_path(self, uid: str) -> str:
        return os.path.join(self.pod_dir(uid), "volagent.json")
