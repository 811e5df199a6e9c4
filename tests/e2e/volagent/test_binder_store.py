"""The binder against the real store (a store process on loopback): same scenarios as the unit
tests on FakeStore, plus 1,000 claims against 1,000 volumes and pvc-protection (graceful deletion)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinnace.api import cluster_pb2
from tests.support.store import start_store
from tests.unit.volagent import binder_cases as bc


@pytest.fixture
def store_endpoint(tmp_path: Path) -> Iterator[str]:
    cluster = start_store(tmp_path / "store")
    try:
        yield cluster.endpoints[0]
    finally:
        cluster.stop()


async def test_smallest_fit_and_mismatches(store_endpoint: str, tmp_path: Path) -> None:
    await bc.case_smallest_fit_and_mismatches(store_endpoint, tmp_path)


async def test_prebinding_and_selector(store_endpoint: str, tmp_path: Path) -> None:
    await bc.case_prebinding_and_selector(store_endpoint, tmp_path)


async def test_race_two_binders_one_volume(store_endpoint: str, tmp_path: Path) -> None:
    await bc.case_race_two_binders_one_volume(store_endpoint, tmp_path)


async def test_recovers_half_binding(store_endpoint: str, tmp_path: Path) -> None:
    await bc.case_recovers_half_binding(store_endpoint, tmp_path)


async def test_reclaim_policies(store_endpoint: str, tmp_path: Path) -> None:
    await bc.case_reclaim_policies(store_endpoint, tmp_path)


async def test_dynamic_provisioning(store_endpoint: str, tmp_path: Path) -> None:
    await bc.case_dynamic_provisioning(store_endpoint, tmp_path)


async def test_rebind_released_retain(store_endpoint: str, tmp_path: Path) -> None:
    await bc.case_rebind_released_retain(store_endpoint, tmp_path)


@pytest.mark.slow
async def test_1000_claims_1000_volumes(store_endpoint: str, tmp_path: Path) -> None:
    took = await bc.case_many(store_endpoint, tmp_path, n=1000)
    print(f"bind_1000_s={took:.2f}")


async def test_reclaim_on_the_data_node(store_endpoint: str, tmp_path: Path) -> None:
    await bc.case_reclaim_on_the_data_node(store_endpoint, tmp_path)


async def test_claim_in_use_is_kept_until_its_pods_finish(store_endpoint: str, tmp_path: Path) -> None:
    """pvc-protection: deleting a claim a pod still uses waits; its volume is not released under the pod."""
    from pinnace.api import meta_pb2, pod_pb2
    from pinnace.client import AsyncClient

    c = AsyncClient([store_endpoint])
    data = tmp_path / "busy"
    data.mkdir()
    (data / "f").write_text("in use")
    await c.create(bc.make_pv("busy", "1Gi", str(data), cls="x", policy="Delete"))
    await c.create(bc.make_pvc("busy", "1Gi", cls="x"))
    pod = pod_pb2.Pod(metadata=meta_pb2.ObjectMeta(name="user", namespace="default"))
    pod.spec.node_name = "node-1"
    pod.spec.containers.add(name="c", image="busybox")
    pod.spec.volumes.add(name="v").persistent_volume_claim.claim_name = "busy"
    async with bc.running_binder(store_endpoint, tmp_path):
        await bc.wait_for(lambda: bc._is(c, "busy", "Bound"), what="bound")
        pod = await c.create(pod)
        pod.status.phase = "Running"
        pod = await c.update_status(pod)
        await c.delete(bc.PVC, "busy", "default")
        await asyncio.sleep(1.0)
        claim = await c.get(bc.PVC, "busy", "default")
        assert claim.metadata.HasField("deletion_timestamp")
        assert await bc.phase(c, bc.PV, "busy") == "Bound" and (data / "f").exists()
        evs = [e for e in (await c.list_all(cluster_pb2.Event, "default")).items if e.reason == "ClaimInUse"]
        assert evs and "user" in evs[0].message
        pod.status.phase = "Succeeded"
        await c.update_status(pod)
        await bc.wait_for(lambda: bc._pv_is(c, "busy", "<gone>"), what="volume deleted after the pod finished")
        assert not data.exists()
    await c.close()


async def test_claims_before_volumes(store_endpoint: str, tmp_path: Path) -> None:
    await bc.case_claims_before_volumes(store_endpoint, tmp_path)
