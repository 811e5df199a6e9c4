"""emptyDir: a directory per pod and volume, on the node's disk or a tmpfs (medium Memory)."""

from __future__ import annotations

import os

from services.volagent import mounts
from services.volagent.errors import VolumeError


def setup(volume: str, path: str, medium: str, size_limit: int | None) -> None:
    """Create the volume directory (mode 0777 like the kubelet); mount a tmpfs for medium Memory.

    Idempotent: an existing directory or tmpfs is kept as it is.
    """
    if medium not in ("", "Memory"):
        raise VolumeError(f'emptyDir volume {volume}: unknown medium {medium!r} (use "" or Memory)')
    try:
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o777)
        if medium == "Memory" and mounts.fs_type(path) != "tmpfs":
            mounts.mount_tmpfs(path, size_limit)
    except OSError as exc:
        raise VolumeError(f"emptyDir volume {volume}: {exc}") from exc


def usage_bytes(path: str) -> int:
    """Disk usage below path like du(1): allocated blocks, each inode once, one file system only."""
    try:
        root_dev = os.lstat(path).st_dev
    except FileNotFoundError:
        return 0
    seen: set[int] = set()
    total = 0
    stack = [path]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_dev != root_dev:
                continue
            if st.st_ino in seen:
                continue
            seen.add(st.st_ino)
            total += st.st_blocks * 512
            if e.is_dir(follow_symlinks=False):
                stack.append(e.path)
    return total
