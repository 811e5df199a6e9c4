"""End to end with the real node agent (host runtime): a pod writes into a PVC-backed volume, a later
pod reads it back; a pod whose claim is not bound waits with the claim's reason until it is."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinnace.api import pod_pb2, storage_pb2
from pinnace.client import AsyncClient
from services.volagent import mounts
from tests.e2e.volagent.agent import Agent
from tests.support.store import StoreCluster, start_store
from tests.unit.volagent import binder_cases as bc

if os.geteuid() != 0:
    pytest.skip("needs root: the node agent runs pods in namespaces with bind mounts", allow_module_level=True)

from tests.e2e.nodeagent.conftest import AgentProcess, cleanup_node
from tests.e2e.nodeagent.helpers import logs, make_pod, wait_gone, wait_pod

pytestmark = [pytest.mark.root]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StoreCluster]:
    cluster = start_store(tmp_path / "store")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def node(store: StoreCluster, tmp_path: Path) -> Iterator[tuple[AgentProcess, Agent]]:
    name = "e2e-vol-" + os.urandom(3).hex()
    na = AgentProcess(tmp_path / "node", store.endpoints, name, "host", crashloop_backoff=1)
    va = Agent(tmp_path, store.endpoints[0], node=name, run_dir=na.run_dir, data_dir=na.data_dir)
    try:
        na.start()
        va.start()
        yield na, va
    finally:
        na.stop()
        va.stop()
        cleanup_node(na)
        for m in mounts.mounts_under(str(tmp_path)):
            mounts.unmount(m)
        shutil.rmtree(na.data_dir / "pods", ignore_errors=True)


def pvc_pod(name: str, node: str, claim: str, mount: str, script: str, read_only: bool = False) -> pod_pb2.Pod:
    pod = make_pod(name, node, ["sh", "-c", script], restart_policy="Never")
    v = pod.spec.volumes.add(name="data")
    v.persistent_volume_claim.claim_name = claim
    v.persistent_volume_claim.read_only = read_only
    pod.spec.containers[0].volume_mounts.add(name="data", mount_path=mount, read_only=read_only)
    return pod


async def test_pod_writes_pvc_later_pod_reads(
    store: StoreCluster, node: tuple[AgentProcess, Agent], tmp_path: Path
) -> None:
    na, _va = node
    c = AsyncClient(store.endpoints)
    data = tmp_path / "pv-data"
    await c.create(bc.make_pv("shared", "1Gi", str(data)))
    await c.create(bc.make_pvc("notes", "1Gi"))
    await bc.wait_for(lambda: bc._is(c, "notes", "Bound"), what="claim bound")
    mnt_w, mnt_r = "/mnt/pn-e2e-pvc-w", "/mnt/pn-e2e-pvc-r"
    try:
        await c.create(pvc_pod("writer", na.node, "notes", mnt_w, f"echo hello-from-writer > {mnt_w}/msg"))
        await wait_pod(c, "writer", lambda p: p.status.phase == "Succeeded", 60, "to write and exit")
        assert (data / "msg").read_text() == "hello-from-writer\n"  # on the PV's backing path
        await c.delete(pod_pb2.Pod, "writer", "default")
        await wait_gone(c, "writer", 30)
        reader = pvc_pod("reader", na.node, "notes", mnt_r, f"cat {mnt_r}/msg; touch {mnt_r}/x || echo ro-ok", True)
        await c.create(reader)
        await wait_pod(c, "reader", lambda p: p.status.phase == "Succeeded", 60, "to read and exit")
        out = await logs(na.port, "reader")
        assert b"hello-from-writer" in out and b"ro-ok" in out, out
        await c.delete(pod_pb2.Pod, "reader", "default")
        await wait_gone(c, "reader", 30)
        assert (data / "msg").exists()  # the volume outlives the pods
        assert not os.path.exists(mnt_w) and not os.path.exists(mnt_r)
    finally:
        for n in ("writer", "reader"):
            with contextlib.suppress(Exception):
                await c.delete(pod_pb2.Pod, n, "default", grace_period_seconds=0)
        await c.close()


async def test_pod_waits_for_unbound_claim(
    store: StoreCluster, node: tuple[AgentProcess, Agent], tmp_path: Path
) -> None:
    na, _va = node
    c = AsyncClient(store.endpoints)
    mnt = "/mnt/pn-e2e-pvc-late"
    try:
        await c.create(bc.make_pvc("late", "1Gi"))
        await c.create(pvc_pod("early", na.node, "late", mnt, f"cat {mnt}/hello"))

        def waiting(p: pod_pb2.Pod) -> bool:
            return "persistentvolumeclaim late is not bound yet (phase Pending)" in p.status.message

        await wait_pod(c, "early", waiting, 30, "to wait for its claim")
        data = tmp_path / "late-data"
        data.mkdir()
        (data / "hello").write_text("finally\n")
        await c.create(bc.make_pv("late-pv", "1Gi", str(data)))
        await wait_pod(c, "early", lambda p: p.status.phase == "Succeeded", 60, "to run once the claim is bound")
        assert b"finally" in await logs(na.port, "early")
        claim = await c.get(storage_pb2.PersistentVolumeClaim, "late")
        assert claim.spec.volume_name == "late-pv"
    finally:
        with contextlib.suppress(Exception):
            await c.delete(pod_pb2.Pod, "early", "default", grace_period_seconds=0)
            await wait_gone(c, "early", 30)
        await c.close()


async def test_pod_reads_gitrepo_and_writes_hostpath(
    store: StoreCluster, node: tuple[AgentProcess, Agent], tmp_path: Path
) -> None:
    from tests.e2e.volagent.test_agent import make_repo

    na, _va = node
    c = AsyncClient(store.endpoints)
    repo, first = make_repo(tmp_path)
    out = tmp_path / "host-out"
    site, hp = "/mnt/pn-e2e-git", "/mnt/pn-e2e-hp"
    pod = make_pod("git", na.node, ["sh", "-c", f"cp {site}/index.html {hp}/copied.html"], restart_policy="Never")
    g = pod.spec.volumes.add(name="site").git_repo
    g.repository, g.revision, g.directory = f"file://{repo}", first, "."
    h = pod.spec.volumes.add(name="out").host_path
    h.path, h.type = str(out), "DirectoryOrCreate"
    pod.spec.containers[0].volume_mounts.add(name="site", mount_path=site, read_only=True)
    pod.spec.containers[0].volume_mounts.add(name="out", mount_path=hp)
    try:
        await c.create(pod)
        await wait_pod(c, "git", lambda p: p.status.phase == "Succeeded", 60, "to copy the checked-out file")
        assert (out / "copied.html").read_text() == "first\n"  # the revision asked for, not the branch head
        await c.delete(pod_pb2.Pod, "git", "default")
        await wait_gone(c, "git", 30)
        assert not list((na.data_dir / "pods").glob("*/volumes"))  # the clone went with the pod
        assert (out / "copied.html").exists()  # hostPath data stays
    finally:
        with contextlib.suppress(Exception):
            await c.delete(pod_pb2.Pod, "git", "default", grace_period_seconds=0)
        await c.close()


async def test_emptydir_over_its_size_limit_evicts_the_pod(
    store: StoreCluster, node: tuple[AgentProcess, Agent], tmp_path: Path
) -> None:
    from pinnace.api import cluster_pb2

    na, _va = node
    c = AsyncClient(store.endpoints)
    mnt = "/mnt/pn-e2e-ed-limit"
    pod = make_pod("hog", na.node, ["sh", "-c", f"head -c 3145728 /dev/zero > {mnt}/blob; sleep 600"])
    v = pod.spec.volumes.add(name="scratch").empty_dir
    v.size_limit.value = "1Mi"
    pod.spec.containers[0].volume_mounts.add(name="scratch", mount_path=mnt)
    try:
        created = await c.create(pod)
        await wait_gone(c, "hog", 60)

        async def evicted_event() -> bool:
            evs = (await c.list_all(cluster_pb2.Event, "default")).items
            return any(e.reason == "Evicted" and e.involved_object.uid == created.metadata.uid for e in evs)

        await bc.wait_for(evicted_event, what="an Evicted event")
        evs = [e for e in (await c.list_all(cluster_pb2.Event, "default")).items if e.reason == "Evicted"]
        assert evs[0].message.startswith("emptyDir volume scratch exceeded its sizeLimit 1Mi (used 3.0Mi")
        assert not (na.data_dir / "pods" / created.metadata.uid / "volumes").exists()
    finally:
        with contextlib.suppress(Exception):
            await c.delete(pod_pb2.Pod, "hog", "default", grace_period_seconds=0)
        await c.close()
