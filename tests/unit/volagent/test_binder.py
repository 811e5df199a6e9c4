"""The binder against the SDK's in-memory FakeStore (fast, no root); e2e/ runs the same cases on the real store."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pinnace.api import cluster_pb2
from pinnace.client import AsyncClient
from pinnace.client.events import EventRecorder
from pinnace.client.testing import FakeStore
from services.volagent.binder.controller import Binder, event_recorder
from tests.unit.volagent import binder_cases as bc


@pytest.fixture
async def store_endpoint() -> AsyncIterator[str]:
    fake = FakeStore()
    server, endpoint = await fake.serve()
    yield endpoint
    await server.stop(None)


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


async def test_200_claims(store_endpoint: str, tmp_path: Path) -> None:
    await bc.case_many(store_endpoint, tmp_path, n=200)


async def test_rebind_released_retain(store_endpoint: str, tmp_path: Path) -> None:
    await bc.case_rebind_released_retain(store_endpoint, tmp_path)


async def test_reclaim_on_the_data_node(store_endpoint: str, tmp_path: Path) -> None:
    await bc.case_reclaim_on_the_data_node(store_endpoint, tmp_path)


async def test_claims_before_volumes(store_endpoint: str, tmp_path: Path) -> None:
    await bc.case_claims_before_volumes(store_endpoint, tmp_path)


async def test_binder_events_use_the_sdk_recorder(store_endpoint: str, tmp_path: Path) -> None:
    """The binder's recorder is the SDK's ("pv-binder", this host); Binder.run() starts and stops the
    recorder it was given unless somebody else already runs it."""
    c = AsyncClient([store_endpoint])
    b = Binder(c, provision_dir=str(tmp_path / "p"))
    assert type(b.events) is EventRecorder
    assert (b.events.component, b.events.host) == ("pv-binder", socket.gethostname())
    task = asyncio.create_task(b.run())
    await bc.wait_for(lambda: _true(b.events.running), what="recorder started")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not b.events.running

    shared = event_recorder(c, component="volagent")  # what services/volagent/app.py uses
    shared.start()
    b2 = Binder(c, provision_dir=str(tmp_path / "p"), recorder=shared)
    task = asyncio.create_task(b2.run())
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert shared.running  # not the binder's to stop
    await c.create(bc.make_pvc("evictee", "1Gi"))
    shared.emit(await c.get(bc.PVC, "evictee", "default"), "Warning", "Evicted", "gone")
    assert await shared.flush(5)
    await shared.stop()
    evs = (await c.list_all(cluster_pb2.Event)).items
    host = socket.gethostname()
    assert [(e.reason, e.source.component, e.source.host) for e in evs] == [("Evicted", "volagent", host)]
    await c.close()


async def _true(value: bool) -> bool:
    return value
