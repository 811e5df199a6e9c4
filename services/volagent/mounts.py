"""Mount table access and mount/umount through libc (fast, no fork) or mount(8) where a helper is needed."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import subprocess

MNT_FORCE = 1
MNT_DETACH = 2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_points() -> list[tuple[str, str]]:
    """(mount point, fs type) of every mount in this process' mount namespace, in mount order."""
    result = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            result.append((_unescape(parts[4]), parts[sep + 1]))
    return result


def is_mount_point(path: str) -> bool:
    real = os.path.realpath(path)
    return any(mp == real for mp, _ in mount_points())


def fs_type(path: str) -> str | None:
    """The fs type of the topmost mount exactly at path, or None if path is not a mount point."""
    real = os.path.realpath(path)
    found = None
    for mp, typ in mount_points():
        if mp == real:
            found = typ
    return found


def mounts_under(prefix: str) -> list[str]:
    """Mount points at or below prefix, deepest (and latest) first: the order to unmount them."""
    real = os.path.realpath(prefix).rstrip("/")
    hits = [mp for mp, _ in mount_points() if mp == real or mp.startswith(real + "/")]
    return list(reversed(hits))


def mount_tmpfs(target: str, size_bytes: int | None) -> None:
    opts = "mode=0777"
    if size_bytes:
        opts += f",size={size_bytes}"
    if _libc.mount(b"tmpfs", target.encode(), b"tmpfs", 0, opts.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tmpfs on {target} ({opts}): {os.strerror(err)}")


def unmount(target: str, *, force: bool = False) -> None:
    """Unmount target; a busy mount is detached lazily, an already unmounted one is fine."""
    flags = MNT_FORCE if force else 0
    if _libc.umount2(target.encode(), flags) == 0:
        return
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):  # not a mount point (any more)
        return
    if _libc.umount2(target.encode(), MNT_DETACH) == 0:
        return
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return
    raise OSError(err, f"umount {target}: {os.strerror(err)}")


def unmount_all_under(prefix: str) -> None:
    """Unmount everything at or below prefix (deepest first); raises if something stays mounted."""
    for mp in mounts_under(prefix):
        unmount(mp, force=fs_type(mp) in ("nfs", "nfs4"))
    left = mounts_under(prefix)
    if left:
        raise OSError(errno.EBUSY, f"still mounted under {prefix}: {', '.join(left)}")


def run_mount(args: list[str], timeout: float = 60.0) -> None:
    """mount(8) with the given arguments; raises OSError with mount's own message on failure."""
    try:
        proc = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise OSError(errno.ETIMEDOUT, f"mount {' '.join(args)} timed out after {timeout:.0f}s") from exc
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip() or f"exit status {proc.returncode}"
        raise OSError(errno.EIO, msg)
