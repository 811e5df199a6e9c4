"""The volume agent as a real process (root): its socket, every plugin for real, eviction, restarts,
the binder crashing between its two writes, one binder leader among several agents, and the
validation layer refusing bad volume input."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from pinnace.api import cluster_pb2, meta_pb2, pod_pb2, storage_pb2
from pinnace.client import AsyncClient, errors
from services.volagent import mounts
from services.volagent.binder.controller import CRASH_ENV
from tests.e2e.volagent.agent import Agent
from tests.support.store import StoreCluster, start_store
from tests.unit.volagent import binder_cases as bc

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: mounts tmpfs volumes"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StoreCluster]:
    cluster = start_store(tmp_path / "store")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[list[Agent]]:
    made: list[Agent] = []
    try:
        yield made
    finally:
        for a in made:
            a.kill()
        for mp in mounts.mounts_under(str(tmp_path)):  # never leave a mount behind, even on failure
            mounts.unmount(mp)


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(root: Path) -> tuple[Path, str]:
    r = root / "site-repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "index.html").write_text("first\n")
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "one")
    first = git(r, "rev-parse", "HEAD")
    (r / "index.html").write_text("second\n")
    git(r, "commit", "-q", "-am", "two")
    return r, first


def pod_with(name: str, *vols: pod_pb2.Volume, uid: str = "") -> pod_pb2.Pod:
    pod = pod_pb2.Pod(metadata=meta_pb2.ObjectMeta(name=name, namespace="default", uid=uid or str(uuid.uuid4())))
    pod.spec.containers.add(name="c", image="busybox")
    pod.spec.volumes.extend(vols)
    return pod


async def wait(fn, timeout: float = 20.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    await bc.wait_for(fn, timeout, what)


async def test_every_plugin_through_the_socket(store: StoreCluster, agents: list[Agent], tmp_path: Path) -> None:
    c = AsyncClient(store.endpoints)
    agent = Agent(tmp_path, store.endpoints[0]).start()
    agents.append(agent)
    repo, first = make_repo(tmp_path)
    mem = pod_pb2.EmptyDirVolumeSource(medium="Memory")
    mem.size_limit.value = "8Mi"
    host = pod_pb2.HostPathVolumeSource(path=str(tmp_path / "h"), type="DirectoryOrCreate")
    site = pod_pb2.GitRepoVolumeSource(repository=f"file://{repo}", revision=first, directory=".")
    claim = pod_pb2.PersistentVolumeClaimVolumeSource(claim_name="data")
    pod = pod_with(
        "web",
        pod_pb2.Volume(name="cache", empty_dir=pod_pb2.EmptyDirVolumeSource()),
        pod_pb2.Volume(name="mem", empty_dir=mem),
        pod_pb2.Volume(name="host", host_path=host),
        pod_pb2.Volume(name="site", git_repo=site),
        pod_pb2.Volume(name="data", persistent_volume_claim=claim),
    )
    await c.create(bc.make_pvc("data", "1Gi"))
    await wait(lambda: bc._is(c, "data", "Pending"), what="claim pending")
    with pytest.raises(grpc.RpcError) as ei:
        agent.mount(pod)
    assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert ei.value.details() == "persistentvolumeclaim data is not bound yet (phase Pending)"
    await c.create(bc.make_pv("disk", "2Gi", str(tmp_path / "pvdata")))
    await wait(lambda: bc._is(c, "data", "Bound"), what="claim bound")
    res = agent.mount(pod)
    got = {v.name: v.host_path for v in res.volumes}
    vols = agent.data_dir / "pods" / pod.metadata.uid / "volumes"
    assert got == {"cache": str(vols / "cache"), "mem": str(vols / "mem"), "host": str(tmp_path / "h"),
                   "site": str(vols / "site"), "data": str(tmp_path / "pvdata")}  # fmt: skip
    assert mounts.fs_type(got["mem"]) == "tmpfs"
    st = os.statvfs(got["mem"])
    assert st.f_blocks * st.f_frsize == 8 * 1024 * 1024
    with pytest.raises(OSError), open(Path(got["mem"]) / "big", "wb") as f:
        f.write(b"\0" * (9 * 1024 * 1024))
        f.flush()
    assert (Path(got["site"]) / "index.html").read_text() == "first\n"
    assert Path(got["data"]).is_dir() and Path(got["host"]).is_dir()
    (Path(got["data"]) / "kept.txt").write_text("pv data")
    assert agent.mount(pod) == res  # idempotent
    # a restart (even a crash) loses nothing: the next Unmount still finds and removes everything
    agent.kill()
    agent.start()
    agent.unmount("default", "web", pod.metadata.uid)
    agent.unmount("default", "web", pod.metadata.uid)
    assert not mounts.mounts_under(str(agent.data_dir))
    assert not (agent.data_dir / "pods" / pod.metadata.uid).exists()
    assert (tmp_path / "pvdata" / "kept.txt").read_text() == "pv data"
    await c.close()


async def test_gitrepo_and_hostpath_errors_are_clear(store: StoreCluster, agents: list[Agent], tmp_path: Path) -> None:
    agent = Agent(tmp_path, store.endpoints[0], binder=False).start()
    agents.append(agent)
    bad = pod_with(
        "g",
        pod_pb2.Volume(name="git-volume", git_repo=pod_pb2.GitRepoVolumeSource(repository="git@xxxx:me/my-repo.git")),
    )
    with pytest.raises(grpc.RpcError) as ei:
        agent.mount(bad)
    assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert ei.value.details().startswith("gitRepo volume git-volume: cannot clone git@xxxx:me/my-repo.git: ")
    repo, _ = make_repo(tmp_path)
    rev = pod_with(
        "g2",
        pod_pb2.Volume(name="git-volume", git_repo=pod_pb2.GitRepoVolumeSource(repository=str(repo), revision="v9.9")),
    )
    with pytest.raises(grpc.RpcError) as ei:
        agent.mount(rev)
    assert f"gitRepo volume git-volume: cannot check out revision v9.9 of {repo}" in ei.value.details()
    hp = pod_with(
        "h", pod_pb2.Volume(name="sock", host_path=pod_pb2.HostPathVolumeSource(path="/etc/hostname", type="Socket"))
    )
    with pytest.raises(grpc.RpcError) as ei:
        agent.mount(hp)
    assert ei.value.details() == "hostPath volume sock: hostPath type check failed: /etc/hostname is not a UNIX socket"
    for p in (bad, rev, hp):
        agent.unmount("default", p.metadata.name, p.metadata.uid)
    assert not list((agent.data_dir / "pods").iterdir())


async def test_emptydir_size_limit_evicts(store: StoreCluster, agents: list[Agent], tmp_path: Path) -> None:
    c = AsyncClient(store.endpoints)
    agent = Agent(tmp_path, store.endpoints[0], binder=False).start()
    agents.append(agent)
    src = pod_pb2.EmptyDirVolumeSource()
    src.size_limit.value = "1Mi"
    pod = pod_with("hog", pod_pb2.Volume(name="scratch", empty_dir=src))
    pod.metadata.uid = ""
    pod.spec.node_name = "node-1"
    pod = await c.create(pod)
    res = agent.mount(pod)
    Path(res.volumes[0].host_path, "blob").write_bytes(os.urandom(2 * 1024 * 1024))

    async def evicted() -> bool:
        try:
            p = await c.get(pod_pb2.Pod, "hog", "default")
        except errors.NotFound:
            return True
        return p.status.reason == "Evicted"

    await wait(evicted, what="pod evicted")
    evs = [e for e in (await c.list_all(cluster_pb2.Event, "default")).items if e.reason == "Evicted"]
    assert evs and evs[0].involved_object.name == "hog"
    assert evs[0].message.startswith("emptyDir volume scratch exceeded its sizeLimit 1Mi (used 2.0Mi")
    try:
        p = await c.get(pod_pb2.Pod, "hog", "default")
        assert (p.status.phase, p.status.reason) == ("Failed", "Evicted")
        assert p.metadata.HasField("deletion_timestamp")
    except errors.NotFound:
        pass  # deleted outright: also fine
    agent.unmount("default", "hog", pod.metadata.uid)
    await c.close()


async def test_binder_crash_between_the_two_writes(store: StoreCluster, agents: list[Agent], tmp_path: Path) -> None:
    c = AsyncClient(store.endpoints)
    crashing = Agent(tmp_path, store.endpoints[0], env={CRASH_ENV: "1"}).start()
    agents.append(crashing)
    await c.create(bc.make_pv("vol", "1Gi", str(tmp_path / "vol")))
    claim = await c.create(bc.make_pvc("mine", "1Gi"))
    assert crashing.proc is not None
    crashing.proc.wait(30)
    assert crashing.proc.returncode == 137, crashing.tail()
    pv = await c.get(storage_pb2.PersistentVolume, "vol", None)
    assert pv.spec.claim_ref.uid == claim.metadata.uid  # first write done
    assert not (await c.get(storage_pb2.PersistentVolumeClaim, "mine")).spec.volume_name  # second not
    crashing.env = {}
    crashing.start()
    await wait(lambda: bc._is(c, "mine", "Bound"), timeout=30, what="binding completed after restart")
    assert (await c.get(storage_pb2.PersistentVolumeClaim, "mine")).spec.volume_name == "vol"
    await bc.check_consistent(c)
    await c.close()


async def test_one_binder_leader(store: StoreCluster, agents: list[Agent], tmp_path: Path) -> None:
    c = AsyncClient(store.endpoints)
    a1 = Agent(tmp_path, store.endpoints[0], node="node-1").start()
    agents.append(a1)
    a2 = Agent(tmp_path, store.endpoints[0], node="node-2").start()
    agents.append(a2)

    async def holder() -> str:
        try:
            lease = await c.get(cluster_pb2.Lease, "pv-binder", "pinnace-system")
        except errors.NotFound:
            return ""
        return lease.spec.holder_identity

    async def held() -> bool:
        return bool(await holder())

    await wait(held, what="a binder leader")
    first = await holder()
    leader, other = (a1, a2) if first.startswith("node-1") else (a2, a1)
    await c.create(bc.make_pv("v1", "1Gi", str(tmp_path / "v1")))
    await c.create(bc.make_pvc("c1", "1Gi"))
    await wait(lambda: bc._is(c, "c1", "Bound"), what="c1 bound")
    leader.kill()

    async def took_over() -> bool:
        return (await holder()).startswith(other.node)

    await wait(took_over, timeout=30, what="the other agent takes the lease")
    await c.create(bc.make_pv("v2", "1Gi", str(tmp_path / "v2")))
    await c.create(bc.make_pvc("c2", "1Gi"))
    await wait(lambda: bc._is(c, "c2", "Bound"), what="c2 bound by the new leader")
    await bc.check_consistent(c)
    await c.close()


async def test_store_refuses_bad_volume_input(store: StoreCluster) -> None:
    """Validation belongs to pinnace.manifest.validation (used by the store): check each refusal."""
    from pinnace.manifest.loader import load_text
    from pinnace.manifest.problems import ManifestError

    with pytest.raises(ManifestError, match=r"persistentVolumeReclaimPolicy|capacity"):
        load_text(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: x}\nspec:\n"
            "  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n"
            "  persistentVolumeReclaimPolicy: Retain\n  capacity: {storage: 1Gi}\n"
        )
    c = AsyncClient(store.endpoints)
    bad_mode = bc.make_pvc("bad-mode", "1Gi", modes=("ReadWriteSometimes",))
    with pytest.raises(errors.Invalid, match="ReadWriteSometimes"):
        await c.create(bad_mode)
    undeclared = pod_with("undeclared", uid="-")
    undeclared.metadata.uid = ""
    undeclared.spec.containers[0].volume_mounts.add(name="nope", mount_path="/data")
    with pytest.raises(errors.Invalid, match="nope"):
        await c.create(undeclared)
    ed = pod_pb2.EmptyDirVolumeSource()
    dup = pod_with("dup", pod_pb2.Volume(name="a", empty_dir=ed), pod_pb2.Volume(name="a", empty_dir=ed))
    dup.metadata.uid = ""
    with pytest.raises(errors.Invalid, match="a"):
        await c.create(dup)
    await c.close()


def test_cli_rebind_command_line(store: StoreCluster, tmp_path: Path) -> None:
    """`pinnace pv rebind` through argparse (the CLI's main imports pinnace.cli.pv.register)."""
    import argparse

    from pinnace.cli import pv as pvcli

    parser = argparse.ArgumentParser(prog="pinnace")
    pvcli.register(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(
        ["pv", "rebind", "missing", "--claim", "default/x", "--store", store.endpoints[0], "--insecure"]
    )
    from pinnace.cli.context import CLIError

    with pytest.raises(CLIError, match="persistentvolume missing not found"):
        args.func(args)
