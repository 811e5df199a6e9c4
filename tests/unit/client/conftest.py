"""Fixtures: an in-memory FakeStore served over gRPC on loopback, and an AsyncClient to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pinnace.client import AsyncClient
from pinnace.client.testing import FakeStore


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeStore, str]]:
    store = FakeStore(bookmark_interval=0.2)
    server, endpoint = await store.serve()
    yield store, endpoint
    await server.stop(None)


@pytest.fixture
async def client(fake: tuple[FakeStore, str]) -> AsyncIterator[AsyncClient]:
    c = AsyncClient([fake[1]], timeout=2, retry_timeout=3)
    yield c
    await c.close()
