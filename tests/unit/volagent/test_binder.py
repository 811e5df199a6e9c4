"""The binder against the SDK's in-memory FakeStore (fast, no root); e2e/ runs the same cases on the real store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pinnace.client.testing import FakeStore
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
