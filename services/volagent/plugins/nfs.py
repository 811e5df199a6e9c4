"""nfs: mount server:path with the kernel NFS client under the pod's volume directory.

The node advertises whether it can do this (label pinnace.io/nfs-client); the node agent
calls `nfs_client_available()` to set it, and the scheduler keeps NFS pods off nodes without
a client. A failed mount is a FAILED_PRECONDITION with mount's own message; the node agent
retries it.
"""

from __future__ import annotations

import os
import shutil

from services.volagent import mounts
from services.volagent.errors import VolumeError

MOUNT_TIMEOUT = 60.0


def _kernel_has_nfs() -> bool:
    try:
        with open("/proc/filesystems", encoding="utf-8") as f:
            for line in f:
                if line.split()[-1:] in (["nfs"], ["nfs4"]):
                    return True
    except OSError:
        return False
    release = os.uname().release
    for base in (f"/lib/modules/{release}/kernel/fs/nfs", f"/usr/lib/modules/{release}/kernel/fs/nfs"):
        if os.path.isdir(base):
            return True  # loadable module: mount will modprobe it
    return False


def nfs_client_status() -> tuple[bool, str]:
    """(can this node mount NFS, why not). Needs the kernel client and the mount.nfs helper."""
    if not _kernel_has_nfs():
        return False, "the kernel has no NFS client (no nfs in /proc/filesystems and no nfs module)"
    helper = shutil.which("mount.nfs") or next(
        (p for p in ("/sbin/mount.nfs", "/usr/sbin/mount.nfs") if os.path.exists(p)), None
    )
    if helper is None:
        return False, "mount.nfs is not installed (package nfs-common / nfs-utils)"
    return True, ""


def nfs_client_available() -> bool:
    """True when this node can mount NFS volumes (value of the node label pinnace.io/nfs-client)."""
    return nfs_client_status()[0]


def mount_args(server: str, export: str, target: str, read_only: bool, options: list[str]) -> list[str]:
    """The mount(8) arguments for this volume (the source is server:path, IPv6 in brackets)."""
    host = f"[{server}]" if ":" in server and not server.startswith("[") else server
    opts = list(options)
    if read_only and "ro" not in opts:
        opts.append("ro")
    args = ["-t", "nfs"]
    if opts:
        args += ["-o", ",".join(opts)]
    return [*args, f"{host}:{export}", target]


def setup(volume: str, path: str, server: str, export: str, read_only: bool, options: list[str] | None = None) -> None:
    """Mount the export at path; idempotent (an NFS mount already there is kept)."""
    if not server or not export:
        raise VolumeError(f"nfs volume {volume}: server and path are required")
    if not export.startswith("/"):
        raise VolumeError(f"nfs volume {volume}: path {export!r} must be absolute")
    os.makedirs(path, exist_ok=True)
    if mounts.fs_type(path) in ("nfs", "nfs4"):
        return
    ok, why = nfs_client_status()
    if not ok:
        raise VolumeError(f"nfs volume {volume}: cannot mount {server}:{export}: {why}")
    try:
        mounts.run_mount(mount_args(server, export, path, read_only, options or []), timeout=MOUNT_TIMEOUT)
    except OSError as exc:
        raise VolumeError(f"nfs volume {volume}: mount {server}:{export} failed: {exc.strerror or exc}") from exc
