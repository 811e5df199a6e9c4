"""An Informer against a real store: it survives a store restart (resumes) and compacted history
(relists), and ends with exactly the store's final state. A test-controlled TCP proxy between the
informer and the store lets the test cut the informer off while the world changes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pinnace.api import pod_pb2
from pinnace.client import AsyncClient, Informer, errors
from tests.support.store import StoreCluster, free_port, start_store


class Proxy:
    """A loopback TCP proxy whose link can be cut (listener closed, connections dropped) and restored."""

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self.port = free_port()
        self.server: asyncio.AbstractServer | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        with contextlib.suppress(Exception):
            w.close()

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection(*self.target)
        except OSError:
            w.close()
            return
        self.writers.update((w, uw))
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(self._pipe(r, uw), self._pipe(ur, w))
        self.writers.difference_update((w, uw))

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for w in list(self.writers):
            with contextlib.suppress(Exception):
                w.transport.abort()
        self.writers.clear()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StoreCluster]:
    cluster = start_store(tmp_path)
    yield cluster
    cluster.stop()


@pytest.fixture
async def admin(store: StoreCluster) -> AsyncIterator[AsyncClient]:
    c = AsyncClient(store.endpoints, retry_timeout=30)
    yield c
    await c.close()


def pod(name: str, **labels: str) -> pod_pb2.Pod:
    p = pod_pb2.Pod()
    p.metadata.name = name
    p.metadata.namespace = "default"
    p.metadata.labels.update(labels)
    p.spec.containers.add(name="c", image="busybox")
    return p


async def converged(inf: Informer[pod_pb2.Pod], admin: AsyncClient, timeout: float = 30.0) -> None:
    """Wait until the informer's cache equals the store's list (names and resource versions)."""
    deadline = asyncio.get_running_loop().time() + timeout
    want: dict[str, str] = {}
    have: dict[str, str] = {}
    while asyncio.get_running_loop().time() < deadline:
        want = {
            f"{p.metadata.namespace}/{p.metadata.name}": p.metadata.resource_version
            for p in (await admin.list(pod_pb2.Pod)).items
        }
        have = {k: o.metadata.resource_version for k in inf.keys() if (o := inf.get(k)) is not None}
        if want == have:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"informer did not converge: missing {set(want) - set(have)}, extra {set(have) - set(want)}")


async def test_informer_survives_restart_and_compaction(store: StoreCluster, admin: AsyncClient) -> None:
    proxy = Proxy(store.endpoints[0])
    await proxy.start()
    client = AsyncClient([proxy.endpoint], timeout=5, retry_timeout=60)
    inf: Informer[pod_pb2.Pod] = Informer(client, pod_pb2.Pod)
    deleted: list[str] = []
    inf.add_handler(on_delete=lambda p: deleted.append(p.metadata.name))
    try:
        for i in range(20):
            await admin.create(pod(f"p{i}", batch="one"))
        await inf.start()
        assert await inf.wait_synced(30)
        await converged(inf, admin)

        # 1. The store restarts: the watch breaks and resumes from the last revision.
        store.kill(0)
        await asyncio.sleep(0.5)
        store.restart(0)
        for i in range(20, 25):
            await admin.create(pod(f"p{i}"))
        await admin.delete(pod_pb2.Pod, "p0")
        await admin.mutate(pod_pb2.Pod, "p1", "default", lambda p: p.metadata.labels.update(x="1"))
        await converged(inf, admin)
        assert "p0" in deleted
        assert inf.get("default/p1") is not None and inf.get("default/p1").metadata.labels["x"] == "1"  # type: ignore[union-attr]

        # 2. Cut off, the history it needs is compacted away: it gets OUT_OF_RANGE and relists.
        relists = inf.relists
        await proxy.cut()
        await asyncio.sleep(0.3)
        for i in range(2, 8):
            await admin.delete(pod_pb2.Pod, f"p{i}")
        for i in range(25, 30):
            await admin.create(pod(f"p{i}"))
        await admin.mutate(pod_pb2.Pod, "p10", "default", lambda p: p.metadata.labels.update(y="2"))
        rev = (await admin.list(pod_pb2.Pod, limit=1)).revision
        await admin.compact(rev)
        with pytest.raises(errors.Gone):
            async for _ in admin.watch(pod_pb2.Pod, from_revision=inf.revision, resume=False):
                break
        await proxy.start()
        await converged(inf, admin)
        assert inf.relists > relists
        assert {f"p{i}" for i in range(2, 8)} <= set(deleted)
        assert inf.get("default/p10").metadata.labels["y"] == "2"  # type: ignore[union-attr]
        assert len(inf.by_index("label", "batch=one")) == 13  # p1 and p8..p19 remain from the first batch
    finally:
        await inf.stop()
        await client.close()
        await proxy.cut()
