"""NFS volumes against a real nfs-ganesha server started in namespaces this test creates.

This machine's kernel has no NFS client, so the test checks everything up to the mount from a
separate client namespace (rpcinfo, showmount, NFS/MOUNT NULL calls and a MOUNT v3 MNT that
returns a file handle, all over TCP) plus the agent's own behaviour without a client; the
kernel mount step runs only where the kernel can mount NFS, and says why it skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinnace.api import meta_pb2, pod_pb2
from services.volagent import mounts
from services.volagent.errors import VolumeError
from services.volagent.manager import VolumeManager
from services.volagent.plugins import nfs
from tests.e2e.volagent.nfsserver import NFSLab

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates network namespaces and runs nfs-ganesha"),
    pytest.mark.skipif(shutil.which("ganesha.nfsd") is None, reason="nfs-ganesha is not installed"),
    pytest.mark.skipif(shutil.which("rpcbind") is None, reason="rpcbind is not installed"),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NFSLab]:
    lab = NFSLab(tmp_path_factory.mktemp("nfs"))
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()


def test_export_answers_from_another_namespace(lab: NFSLab) -> None:
    rpc = lab.in_client("rpcinfo", "-p", lab.server_ip).stdout
    assert "100003    3   tcp   2049  nfs" in rpc and "100003    4   tcp   2049  nfs" in rpc
    assert "mountd" in rpc
    exports = lab.in_client("showmount", "-e", lab.server_ip).stdout
    assert str(lab.export) in exports, exports
    res = lab.in_client(sys.executable, "-m", "tests.e2e.volagent.nfsserver", lab.server_ip, str(lab.export))
    got = json.loads(res.stdout)
    assert got["nfs_v3_null"] == got["nfs_v4_null"] == got["mount_null"] == "ok"
    assert got["mnt_status"] == 0 and int(got["fh_len"]) > 0, got  # the server hands out a root file handle
    assert got["mnt_missing_status"] != 0, got


async def test_agent_reports_missing_client_clearly(lab: NFSLab, tmp_path: Path) -> None:
    ok, why = nfs.nfs_client_status()
    if ok:
        pytest.skip("this kernel has an NFS client; covered by test_kernel_mount")
    m = VolumeManager(str(tmp_path / "data"))
    pod = pod_pb2.Pod(metadata=meta_pb2.ObjectMeta(name="web", namespace="default", uid="nfs-u1"))
    pod.spec.volumes.add(name="shared").nfs.CopyFrom(
        pod_pb2.NFSVolumeSource(server=lab.server_ip, path=str(lab.export), read_only=True)
    )
    with pytest.raises(VolumeError) as ei:
        await m.mount_pod(pod)
    assert ei.value.message == f"nfs volume shared: cannot mount {lab.server_ip}:{lab.export}: {why}"
    assert nfs.mount_args(lab.server_ip, str(lab.export), "/x", True, []) == [
        "-t", "nfs", "-o", "ro", f"{lab.server_ip}:{lab.export}", "/x"
    ]  # fmt: skip
    await m.unmount_pod("nfs-u1")
    assert not (tmp_path / "data" / "pods" / "nfs-u1").exists()


def test_kernel_mount(lab: NFSLab, tmp_path: Path) -> None:
    ok, why = nfs.nfs_client_status()
    if not ok:
        pytest.skip(
            f"mount step skipped: {why}. Verified up to the mount instead: the nfs-ganesha export at "
            f"{lab.server_ip}:{lab.export} answers rpcinfo, showmount, NFS/MOUNT NULL and MOUNT v3 MNT "
            "from a separate network namespace; the agent reports the missing client as a clear error"
        )
    target = tmp_path / "mnt"
    target.mkdir()
    # The agent runs in the node's namespace; here the node is the client namespace.
    args = nfs.mount_args(lab.server_ip, str(lab.export), str(target), False, ["vers=4.1"])
    try:
        lab.in_client("sh", "-c", f"mount {' '.join(args)} && cat {target}/hello.txt > {tmp_path}/read.txt")
        assert (tmp_path / "read.txt").read_text() == "hello from nfs\n"
    finally:
        lab.in_client("umount", "-f", "-l", str(target), check=False)
        assert not mounts.is_mount_point(str(target))
