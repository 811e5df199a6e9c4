"""AsyncClient/Client against the in-memory FakeStore: typed CRUD, errors, mutate, watch, failover."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from pinnace.api import apps_pb2, object_pb2, pod_pb2
from pinnace.client import AsyncClient, Client, errors
from pinnace.client.testing import FakeStore, ThreadedFakeStore


def pod(name: str, ns: str = "default", **labels: str) -> pod_pb2.Pod:
    p = pod_pb2.Pod()
    p.metadata.name = name
    p.metadata.namespace = ns
    p.metadata.labels.update(labels)
    p.spec.containers.add(name="c", image="busybox")
    return p


async def test_crud_typed(client: AsyncClient) -> None:
    created = await client.create(pod("web", app="web"))
    assert isinstance(created, pod_pb2.Pod)
    assert created.metadata.uid and created.metadata.resource_version
    got = await client.get(pod_pb2.Pod, "web")
    assert got == created
    with pytest.raises(errors.AlreadyExists):
        await client.create(pod("web"))
    with pytest.raises(errors.NotFound):
        await client.get(pod_pb2.Pod, "nope")
    got.spec.node_name = "n1"
    updated = await client.update(got)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    with pytest.raises(errors.Conflict):
        await client.update(got)  # stale resource_version
    env = await client.create(object_pb2.Object(pod=pod("other")))
    assert isinstance(env, object_pb2.Object)
    res = await client.list(pod_pb2.Pod, label_selector="app=web")
    assert [p.metadata.name for p in res.items] == ["web"]
    assert res.revision >= int(updated.metadata.resource_version)
    deleted = await client.delete(pod_pb2.Pod, "web")
    assert deleted is not None and deleted.metadata.name == "web"
    with pytest.raises(errors.NotFound):
        await client.delete(pod_pb2.Pod, "web")


async def test_pagination(client: AsyncClient) -> None:
    for i in range(25):
        await client.create(pod(f"p{i:02d}"))
    page = await client.list(pod_pb2.Pod, limit=10)
    assert len(page.items) == 10 and page.continue_token
    names = [p.metadata.name async for p in client.iter_list(pod_pb2.Pod, page_size=7)]
    assert names == [f"p{i:02d}" for i in range(25)]
    everything = await client.list_all(pod_pb2.Pod, page_size=4)
    assert len(everything.items) == 25


async def test_mutate_retries_conflicts(client: AsyncClient) -> None:
    d = apps_pb2.Deployment()
    d.metadata.name = "d"
    d.metadata.namespace = "default"
    d.spec.replicas = 1
    await client.create(d)
    calls = 0

    async def bump(obj: apps_pb2.Deployment) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # a concurrent writer sneaks in between our read and write
            other = await client.get(apps_pb2.Deployment, "d")
            other.metadata.labels["x"] = "y"
            await client.update(other)
        obj.spec.replicas = obj.spec.replicas + 1

    out = await client.mutate(apps_pb2.Deployment, "d", "default", bump)
    assert calls == 2
    assert out.spec.replicas == 2 and out.metadata.labels["x"] == "y"

    def set_status(obj: apps_pb2.Deployment) -> None:
        obj.status.ready_replicas = 2

    out = await client.mutate_status(apps_pb2.Deployment, "d", "default", set_status)
    assert out.status.ready_replicas == 2 and out.spec.replicas == 2


async def test_watch_typed_and_resumes(fake: tuple[FakeStore, str], client: AsyncClient) -> None:
    store, _ = fake
    rev = (await client.list(pod_pb2.Pod)).revision
    events = []

    async def consume() -> None:
        async for ev in client.watch(pod_pb2.Pod, from_revision=rev):
            events.append((ev.type, ev.object.metadata.name))
            if len(events) == 3:
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    p = await client.create(pod("a"))
    await asyncio.sleep(0.05)
    store.disconnect_watchers()  # the stream ends; the iterator reconnects from the last revision
    p.spec.node_name = "n"
    await client.update(p)
    await client.delete(pod_pb2.Pod, "a")
    await asyncio.wait_for(task, 3)
    assert events == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]


async def test_watch_gone(fake: tuple[FakeStore, str], client: AsyncClient) -> None:
    store, _ = fake
    await client.create(pod("a"))
    await client.create(pod("b"))
    store.compact()
    with pytest.raises(errors.Gone):
        async for _ in client.watch(pod_pb2.Pod, from_revision=1):
            pass


async def test_failover_to_live_endpoint(fake: tuple[FakeStore, str]) -> None:
    # The first endpoint refuses connections; the client moves on to the second.
    c = AsyncClient(["127.0.0.1:1", fake[1]], timeout=2, retry_timeout=5)
    try:
        await c.create(pod("x"))
        assert c.current_endpoint == fake[1]
    finally:
        await c.close()


async def test_unavailable_after_retry_timeout() -> None:
    c = AsyncClient(["127.0.0.1:1"], timeout=0.5, retry_timeout=0.5)
    try:
        with pytest.raises(errors.Unavailable) as info:
            await c.get(pod_pb2.Pod, "x")
        assert "127.0.0.1:1" in str(info.value)
    finally:
        await c.close()


def test_sync_client() -> None:
    fake = ThreadedFakeStore()
    with Client([fake.endpoint]) as c:
        c.create(pod("s", app="s"))
        assert c.get(pod_pb2.Pod, "s").metadata.labels["app"] == "s"
        assert [p.metadata.name for p in c.iter_list(pod_pb2.Pod, page_size=1)] == ["s"]
        rev = c.list(pod_pb2.Pod).revision
        c.mutate(pod_pb2.Pod, "s", "default", lambda p: p.metadata.labels.update(v="2"))
        for ev in c.watch(pod_pb2.Pod, from_revision=rev):
            assert ev.type == "MODIFIED" and ev.object.metadata.labels["v"] == "2"
            break
        with pytest.raises(errors.NotFound):
            c.get(pod_pb2.Pod, "missing")
    fake.stop()


def test_invalid_field_path() -> None:
    err = errors.Invalid("spec.containers[0].image: Required value")
    assert err.field_path == "spec.containers[0].image"
    assert errors.Invalid("bad value (field spec.replicas)").field_path == "spec.replicas"
    assert errors.Invalid("something went wrong").field_path == ""

    class FakeRpc(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return grpc.StatusCode.INVALID_ARGUMENT

        def details(self) -> str:
            return "metadata.name: Invalid value: 'A_B'"

        def trailing_metadata(self) -> tuple[()]:
            return ()

    mapped = errors.from_rpc_error(FakeRpc())
    assert isinstance(mapped, errors.Invalid) and mapped.field_path == "metadata.name"
