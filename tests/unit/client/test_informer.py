"""Informer against the FakeStore: sync, indexes, handlers, resume after disconnect, relist on Gone, resync."""

from __future__ import annotations

import asyncio

from pinnace.api import pod_pb2
from pinnace.client import AsyncClient, Informer
from pinnace.client.testing import FakeStore
from tests.support.waiting import eventually_async as eventually


def pod(name: str, ns: str = "default", node: str = "", **labels: str) -> pod_pb2.Pod:
    p = pod_pb2.Pod()
    p.metadata.name = name
    p.metadata.namespace = ns
    p.metadata.labels.update(labels)
    p.spec.node_name = node
    return p


async def test_sync_indexes_and_handlers(fake: tuple[FakeStore, str], client: AsyncClient) -> None:
    store, _ = fake
    store.put(pod("a", node="n1", app="web"))
    store.put(pod("b", ns="kube-system", node="n2", app="dns"))
    inf: Informer[pod_pb2.Pod] = Informer(client, pod_pb2.Pod)
    inf.add_index("byNode", lambda p: [p.spec.node_name])
    log: list[tuple[str, str]] = []
    inf.add_handler(
        on_add=lambda p: log.append(("add", p.metadata.name)),
        on_update=lambda old, new: log.append(("update", new.metadata.name)),
        on_delete=lambda p: log.append(("delete", p.metadata.name)),
    )
    await inf.start()
    assert await inf.wait_synced(3)
    assert sorted(log) == [("add", "a"), ("add", "b")]
    assert inf.get("default/a") is not None
    assert [p.metadata.name for p in inf.by_index("byNode", "n2")] == ["b"]
    assert [p.metadata.name for p in inf.list(namespace="kube-system")] == ["b"]
    assert [p.metadata.name for p in inf.list(label_selector="app=web")] == ["a"]
    assert [p.metadata.name for p in inf.by_index("label", "app=dns")] == ["b"]

    log.clear()
    await client.create(pod("c", node="n1"))
    a = await client.get(pod_pb2.Pod, "a")
    a.spec.node_name = "n2"
    await client.update(a)
    await client.delete(pod_pb2.Pod, "b", "kube-system")
    await eventually(lambda: len(log) == 3)
    assert log == [("add", "c"), ("update", "a"), ("delete", "b")]
    assert sorted(p.metadata.name for p in inf.by_index("byNode", "n1")) == ["c"]
    assert [p.metadata.name for p in inf.by_index("byNode", "n2")] == ["a"]
    assert inf.by_index("namespace", "kube-system") == []

    # A handler added late is told about what is cached.
    late: list[str] = []
    inf.add_handler(on_add=lambda p: late.append(p.metadata.name))
    assert sorted(late) == ["a", "c"]
    await inf.stop()


async def test_resume_after_disconnect_without_relist(fake: tuple[FakeStore, str], client: AsyncClient) -> None:
    store, _ = fake
    inf: Informer[pod_pb2.Pod] = Informer(client, pod_pb2.Pod)
    await inf.start()
    await inf.wait_synced(3)
    await client.create(pod("a"))
    await eventually(lambda: inf.get("default/a") is not None)
    store.disconnect_watchers()
    await client.create(pod("b"))
    await eventually(lambda: inf.get("default/b") is not None)
    assert inf.relists == 1
    await inf.stop()


async def test_relist_on_gone_reports_missed_deletes(fake: tuple[FakeStore, str], client: AsyncClient) -> None:
    store, _ = fake
    for n in ("a", "b", "c"):
        store.put(pod(n))
    deleted: list[str] = []
    added: list[str] = []
    inf: Informer[pod_pb2.Pod] = Informer(client, pod_pb2.Pod)
    inf.add_handler(on_add=lambda p: added.append(p.metadata.name), on_delete=lambda p: deleted.append(p.metadata.name))
    await inf.start()
    await inf.wait_synced(3)
    # Break the stream and change things while the informer cannot see them; then compact.
    store.disconnect_watchers()
    store.remove("pod", "default", "b")
    store.put(pod("d"))
    store.compact()
    store.disconnect_watchers()
    await eventually(lambda: inf.get("default/d") is not None and inf.get("default/b") is None)
    assert sorted(inf.keys()) == ["default/a", "default/c", "default/d"]
    assert "b" in deleted and "d" in added
    await inf.stop()


async def test_label_selector_objects_leave(fake: tuple[FakeStore, str], client: AsyncClient) -> None:
    inf: Informer[pod_pb2.Pod] = Informer(client, pod_pb2.Pod, label_selector="app=web")
    await inf.start()
    await inf.wait_synced(3)
    await client.create(pod("a", app="web"))
    await eventually(lambda: len(inf) == 1)
    p = await client.get(pod_pb2.Pod, "a")
    p.metadata.labels["app"] = "other"
    await client.update(p)
    await eventually(lambda: len(inf) == 0)
    await inf.stop()


async def test_resync_redelivers(fake: tuple[FakeStore, str], client: AsyncClient) -> None:
    store, _ = fake
    store.put(pod("a"))
    updates: list[str] = []
    inf: Informer[pod_pb2.Pod] = Informer(client, pod_pb2.Pod, resync_period=0.05)
    inf.add_handler(on_update=lambda old, new: updates.append(new.metadata.name))
    await inf.start()
    await eventually(lambda: len(updates) >= 2)
    await inf.stop()


async def test_async_handlers_and_failing_handler(fake: tuple[FakeStore, str], client: AsyncClient) -> None:
    seen: list[str] = []

    async def on_add(p: pod_pb2.Pod) -> None:
        await asyncio.sleep(0)
        seen.append(p.metadata.name)

    def boom(p: pod_pb2.Pod) -> None:
        raise RuntimeError("handler bug")

    inf: Informer[pod_pb2.Pod] = Informer(client, pod_pb2.Pod)
    inf.add_handler(on_add=boom)
    inf.add_handler(on_add=on_add)
    await inf.start()
    await inf.wait_synced(3)
    await client.create(pod("x"))
    await eventually(lambda: seen == ["x"])
    await inf.stop()


async def test_silent_watch_is_restarted(fake: tuple[FakeStore, str], client: AsyncClient) -> None:
    store, _ = fake
    store.bookmark_interval = 0  # a store that never sends bookmarks looks hung when idle
    inf: Informer[pod_pb2.Pod] = Informer(client, pod_pb2.Pod, watch_idle_timeout=0.3)
    await inf.start()
    await inf.wait_synced(3)
    await eventually(lambda: inf.watch_restarts >= 2)
    await client.create(pod("late"))
    await eventually(lambda: inf.get("default/late") is not None)
    assert inf.relists == 1
    await inf.stop()
