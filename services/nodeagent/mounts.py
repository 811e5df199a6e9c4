"""Mount table helpers: what is mounted under a directory, and cleanup of mount points we created."""

from __future__ import annotations

import contextlib
import os


def _unescape(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mount_points(mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    """Mount points of this process's mount namespace."""
    out: list[str] = []
    with contextlib.suppress(OSError), open(mountinfo) as f:
        for line in f:
            parts = line.split()
            if len(parts) > 4:
                out.append(_unescape(parts[4]))
    return out


def mounts_under(path: str) -> list[str]:
    """Mount points at or below path."""
    path = os.path.abspath(path)
    return [m for m in mount_points() if m == path or m.startswith(path.rstrip("/") + "/")]


def remove_created_mountpoints(record: str) -> None:
    """rmdir (or unlink empty files) the mount points a shim created on the host, deepest first."""
    try:
        with open(record) as f:
            paths = [p.strip() for p in f if p.strip()]
    except FileNotFoundError:
        return
    mounted = set(mount_points())
    for p in sorted(set(paths), key=lambda s: s.count("/"), reverse=True):
        if p in mounted:
            continue
        with contextlib.suppress(OSError):
            if os.path.isdir(p) and not os.path.islink(p):
                os.rmdir(p)
            elif os.path.isfile(p) and os.path.getsize(p) == 0:
                os.unlink(p)
    with contextlib.suppress(OSError):
        os.unlink(record)
