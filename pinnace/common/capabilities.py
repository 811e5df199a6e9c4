"""What this machine can do for pods, judged the same way by every component: the node agent
advertises it (label pinnace.io/nfs-client), the volume agent relies on it when it mounts."""

from __future__ import annotations

import os
import shutil


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
    """True when this node can mount NFS volumes (the value of the label pinnace.io/nfs-client)."""
    return nfs_client_status()[0]
