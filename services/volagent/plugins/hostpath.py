"""hostPath (and local PVs): a path on the node, checked against the declared type."""

from __future__ import annotations

import os
import stat

from services.volagent.errors import VolumeError

TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice")

_CHECKS = {
    "Directory": (stat.S_ISDIR, "a directory"),
    "DirectoryOrCreate": (stat.S_ISDIR, "a directory"),
    "File": (stat.S_ISREG, "a file"),
    "FileOrCreate": (stat.S_ISREG, "a file"),
    "Socket": (stat.S_ISSOCK, "a UNIX socket"),
    "CharDevice": (stat.S_ISCHR, "a character device"),
    "BlockDevice": (stat.S_ISBLK, "a block device"),
}


def setup(volume: str, path: str, type_: str, *, what: str = "hostPath") -> str:
    """Check (or create) path as type_ says; returns the path to bind into containers."""
    if type_ not in TYPES:
        known = ", ".join(t or '""' for t in TYPES)
        raise VolumeError(f"{what} volume {volume}: unknown type {type_!r} (one of {known})")
    if not path or not os.path.isabs(path):
        raise VolumeError(f"{what} volume {volume}: path {path!r} must be absolute")
    path = os.path.normpath(path)
    if type_ == "":
        # No checks, as in Kubernetes; a missing path becomes a directory, as Docker's bind mounts
        # (and so Kubernetes on Docker) always did: the runtime needs something to bind.
        if not os.path.lexists(path):
            try:
                os.makedirs(path, mode=0o755, exist_ok=True)
            except OSError as exc:
                raise VolumeError(f"{what} volume {volume}: cannot create {path}: {exc.strerror or exc}") from exc
        return path
    try:
        if type_ == "DirectoryOrCreate" and not os.path.lexists(path):
            os.makedirs(path, mode=0o755, exist_ok=True)
        elif type_ == "FileOrCreate" and not os.path.lexists(path):
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
            os.close(fd)
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise VolumeError(f"{what} volume {volume}: hostPath type check failed: {path} does not exist") from exc
    except OSError as exc:
        raise VolumeError(f"{what} volume {volume}: {path}: {exc.strerror or exc}") from exc
    check, desc = _CHECKS[type_]
    if not check(st.st_mode):
        raise VolumeError(f"{what} volume {volume}: hostPath type check failed: {path} is not {desc}")
    return path


def setup_local(volume: str, path: str) -> str:
    """A local PV: the path must already exist (a directory, or a block device for volumeMode Block)."""
    if not os.path.exists(path):
        raise VolumeError(f"local volume {volume}: path {path} does not exist on this node")
    return os.path.normpath(path)
