"""Acting on a Released volume's data: Delete removes it, Recycle scrubs it (rm -rf <path>/*).

Only data under the allowed roots is ever touched (the provisioning base directory and any
--reclaim-root): a PV pointing at /etc or / is never wiped, it goes to phase Failed instead.
"""

from __future__ import annotations

import os
import shutil

from pinnace.api import storage_pb2

# On a PV whose data lives on another node: the policy ("Delete"/"Recycle") asks that node's
# volagent to act on the data; it answers "Done" (or sets the PV Failed with the reason).
RECLAIM_ANNOTATION = "pinnace.io/reclaim"
RECLAIM_DONE = "Done"


class ReclaimError(Exception):
    """The data could not be deleted or scrubbed; the message goes into the PV's status."""


def data_path(pv: storage_pb2.PersistentVolume) -> str:
    if pv.spec.HasField("host_path"):
        return pv.spec.host_path.path
    if pv.spec.HasField("local"):
        return pv.spec.local.path
    if pv.spec.HasField("nfs"):
        raise ReclaimError("the binder cannot delete or scrub data on an NFS export (use Retain)")
    raise ReclaimError("the volume has no hostPath or local source")


def _allowed(path: str, roots: list[str]) -> str:
    real = os.path.realpath(path)
    for root in roots:
        r = os.path.realpath(root)
        if real != r and real.startswith(r.rstrip("/") + "/"):
            return real
    raise ReclaimError(f"refusing to touch {path}: it is not below an allowed reclaim root ({', '.join(roots)})")


def delete_data(pv: storage_pb2.PersistentVolume, roots: list[str]) -> None:
    """Remove the volume's directory (or file) entirely; missing data is fine."""
    path = _allowed(data_path(pv), roots)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def scrub_data(pv: storage_pb2.PersistentVolume, roots: list[str]) -> None:
    """Empty the volume's directory but keep it (Recycle: `rm -rf <path>/* <path>/.*`)."""
    path = _allowed(data_path(pv), roots)
    if not os.path.isdir(path):
        os.makedirs(path, exist_ok=True)
        return
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
