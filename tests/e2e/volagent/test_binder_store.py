"""The binder against the real store (a store process on loopback): same scenarios as the unit
tests on FakeStore, plus 1,000 claims against 1,000 volumes, and the validation layer's refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
