"""nfs: mount server:path with the kernel NFS client under the pod's volume directory.

The node advertises whether it can do this (label pinnace.io/nfs-client, set by the node agent
from pinnace.common.capabilities, the same check this plugin makes before mounting), and the
scheduler keeps NFS pods off nodes without a client. A failed mount is a FAILED_PRECONDITION
with mount's own message; the node agent retries it.
"""

from __future__ import annotations

import os

from pinnace.common.capabilities import nfs_client_available, nfs_client_status
from services.volagent import mounts
from services.volagent.errors import VolumeError

MOUNT_TIMEOUT = 60.0


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


__all__ = ["mount_args", "nfs_client_available", "nfs_client_status", "setup"]
