"""Fixtures for the store's integration tests: one single-replica store process per test module
(bookmarks every 0.5 s) and a blocking stub to it. test_store_replicas overrides `cluster`."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from pinnace.api import store_pb2_grpc
from tests.support.store import StoreCluster, start_store


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreCluster]:
    c = start_store(tmp_path_factory.mktemp("store"), bookmark_interval=0.5)
    yield c
    c.stop()


@pytest.fixture
def stub(cluster: StoreCluster) -> Iterator[store_pb2_grpc.StoreStub]:
    with grpc.insecure_channel(cluster.endpoints[0]) as ch:
        yield store_pb2_grpc.StoreStub(ch)
