"""Pod worker logic against an in-memory runtime and the SDK's FakeStore (no root needed)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pinnace.api import pod_pb2
from pinnace.client import AsyncClient
from pinnace.client.testing import FakeStore
from services.nodeagent.context import AgentContext
from services.nodeagent.nodelocal import NetagentClient, VolagentClient
from services.nodeagent.podworker import PodWorker
from tests.unit.nodeagent.fakeruntime import FakeRuntime

Env = tuple[AgentContext, FakeRuntime, AsyncClient, FakeStore]


def _waiting(reason: str) -> Callable[[pod_pb2.Pod], bool]:
    return lambda p: bool(p.status.container_statuses) and p.status.container_statuses[0].state.waiting.reason == reason


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[AgentContext, FakeRuntime, AsyncClient, FakeStore]]:
    fake = FakeStore()
    server, endpoint = await fake.serve()
    client = AsyncClient([endpoint])
    rt = FakeRuntime()
    ctx = AgentContext(
        client=client,
        runtime=rt,
        netagent=NetagentClient(str(tmp_path / "none.sock")),
        volagent=VolagentClient(str(tmp_path / "none2.sock")),
        node_name="n1",
        host_ip="10.0.0.1",
        data_dir=str(tmp_path / "data"),
        run_dir=str(tmp_path / "run"),
        backoff_base=0.2,
    )
    try:
        yield ctx, rt, client, fake
    finally:
        await client.close()
        await server.stop(None)


def _pod(name: str = "p", policy: str = "Always") -> pod_pb2.Pod:
    pod = pod_pb2.Pod()
    pod.metadata.name = name
    pod.metadata.namespace = "default"
    pod.spec.node_name = "n1"
    pod.spec.restart_policy = policy
    pod.spec.termination_grace_period_seconds = 1
    pod.spec.containers.add(name="c", image="img", command=["run"])
    return pod


async def _until(client: AsyncClient, pred: Callable[[pod_pb2.Pod], bool], timeout: float = 5) -> pod_pb2.Pod:
    deadline = time.monotonic() + timeout
    while True:
        p = await client.get(pod_pb2.Pod, "p", "default")
        if pred(p):
            return p
        if time.monotonic() > deadline:
            raise AssertionError(str(p.status))
        await asyncio.sleep(0.02)


async def test_runs_restarts_with_backoff_and_terminates(
    env: tuple[AgentContext, FakeRuntime, AsyncClient, FakeStore],
) -> None:
    ctx, rt, client, _ = env
    pod = await client.create(_pod())
    w = PodWorker(ctx, pod)
    w.start()
    p = await _until(client, lambda p: p.status.phase == "Running" and p.status.container_statuses[0].ready)
    assert p.status.host_ip == "10.0.0.1" and p.status.pod_ip == ""
    cid = p.status.container_statuses[0].container_id
    rt.finish(cid, 1)
    # first restart is immediate
    p = await _until(
        client, lambda p: p.status.container_statuses[0].restart_count == 1 and p.status.phase == "Running"
    )
    assert p.status.container_statuses[0].last_state.terminated.exit_code == 1
    rt.finish(p.status.container_statuses[0].container_id, 1)
    p = await _until(client, _waiting("CrashLoopBackOff"))
    p = await _until(client, lambda p: p.status.container_statuses[0].restart_count == 2, timeout=3)
    assert p.status.container_statuses[0].state.HasField("running")
    # deletion: SIGTERM, then cleanup, then the pod object is removed
    w.update(await client.delete(pod_pb2.Pod, "p", "default") or pod)
    marked = pod_pb2.Pod()
    marked.CopyFrom(p)
    marked.metadata.deletion_timestamp.GetCurrentTime()
    w.update(marked)
    await asyncio.wait_for(w.done.wait(), 5)
    assert rt.signals and rt.signals[-1][1] == signal.SIGTERM
    assert rt.cleaned == [p.metadata.uid] and not rt.sandboxes


async def test_never_policy_fails_and_init_order(env: Env) -> None:
    ctx, rt, client, _ = env
    pod = _pod(policy="Never")
    pod.spec.init_containers.add(name="init", image="img", command=["x"])
    pod = await client.create(pod)
    w = PodWorker(ctx, pod)
    w.start()
    p = await _until(
        client,
        lambda p: (
            bool(p.status.init_container_statuses) and p.status.init_container_statuses[0].state.HasField("running")
        ),
    )
    assert p.status.phase == "Pending" and [c.name for c in rt.started] == ["init"]
    assert p.status.container_statuses[0].state.waiting.reason == "PodInitializing"
    rt.finish(p.status.init_container_statuses[0].container_id, 0)
    p = await _until(client, lambda p: p.status.phase == "Running")
    rt.finish(p.status.container_statuses[0].container_id, 137, "OOMKilled")
    p = await _until(client, lambda p: p.status.phase == "Failed")
    t = p.status.container_statuses[0].state.terminated
    assert t.reason == "OOMKilled" and t.exit_code == 137
    for _ in range(50):
        if not rt.sandboxes:
            break
        await asyncio.sleep(0.02)
    assert not rt.sandboxes  # the finished pod's sandbox is released
    w.deleted()
    await asyncio.wait_for(w.done.wait(), 5)


async def test_volumes_wait_for_volagent(env: Env) -> None:
    ctx, rt, client, _ = env
    pod = _pod()
    pod.spec.volumes.add(name="data").empty_dir.medium = ""
    pod = await client.create(pod)
    w = PodWorker(ctx, pod)
    w.start()
    p = await _until(
        client,
        lambda p: (
            bool(p.status.container_statuses)
            and p.status.container_statuses[0].state.waiting.reason == "VolumesNotReady"
        ),
    )
    assert "volume agent" in p.status.message and not rt.started
    w.deleted()
    await asyncio.wait_for(w.done.wait(), 5)


async def test_active_deadline_fails_pod(env: Env) -> None:
    ctx, rt, client, _ = env
    pod = _pod()
    pod.spec.active_deadline_seconds = 1
    pod = await client.create(pod)
    w = PodWorker(ctx, pod)
    w.start()
    await _until(client, lambda p: p.status.phase == "Running")
    p = await _until(client, lambda p: p.status.phase == "Failed", timeout=5)
    assert p.status.reason == "DeadlineExceeded"
    assert rt.signals and rt.signals[0][1] == signal.SIGTERM
    w.deleted()
    await asyncio.wait_for(w.done.wait(), 5)


async def test_sidecar_starts_before_app_and_events(env: Env) -> None:
    ctx, rt, client, _ = env
    from pinnace.api import cluster_pb2
    from pinnace.client.events import EventRecorder
    from services.nodeagent.agent import EVENT_COMPONENT

    recorder = EventRecorder(client, EVENT_COMPONENT, host="n1")
    recorder.start()
    ctx.events = recorder
    pod = _pod()
    side = pod.spec.init_containers.add(name="side", image="img", command=["proxy"])
    side.restart_policy = "Always"
    pod = await client.create(pod)
    w = PodWorker(ctx, pod)
    w.start()
    p = await _until(client, lambda p: p.status.phase == "Running" and p.status.container_statuses[0].ready)
    assert [c.name for c in rt.started] == ["side", "c"]
    assert p.status.init_container_statuses[0].state.HasField("running")
    assert await recorder.flush(5)
    evs = (await client.list(cluster_pb2.Event, namespace="default")).items
    started = {e.involved_object.field_path: e for e in evs if e.reason == "Started"}
    assert set(started) == {"spec.containers{side}", "spec.containers{c}"}
    ev = started["spec.containers{c}"]
    assert (ev.type, ev.message) == ("Normal", "Started container c")
    assert (ev.involved_object.kind, ev.involved_object.name, ev.involved_object.uid) == ("Pod", "p", pod.metadata.uid)
    assert (ev.source.component, ev.source.host) == ("nodeagent", "n1")
    w.deleted()
    await asyncio.wait_for(w.done.wait(), 5)
    await recorder.stop()


async def test_image_change_restarts_container(env: Env) -> None:
    ctx, rt, client, _ = env
    pod = await client.create(_pod(policy="Never"))
    w = PodWorker(ctx, pod)
    w.start()
    p = await _until(client, lambda p: p.status.phase == "Running")
    changed = pod_pb2.Pod()
    changed.CopyFrom(p)
    changed.spec.containers[0].image = "img:v2"
    w.update(changed)
    p = await _until(
        client, lambda p: p.status.container_statuses[0].restart_count == 1 and p.status.phase == "Running"
    )
    assert [c.image for c in rt.started] == ["img", "img:v2"]
    w.deleted()
    await asyncio.wait_for(w.done.wait(), 5)


async def test_rejected_pod_fails_without_running(env: Env) -> None:
    ctx, rt, client, _ = env
    pod = await client.create(_pod())
    w = PodWorker(ctx, pod)
    w.reject("OutOfpods", "Node didn't have enough resource: pods, limit 0")
    w.start()
    p = await _until(client, lambda p: p.status.phase == "Failed")
    assert p.status.reason == "OutOfpods" and not rt.started and w.finished()
    w.deleted()
    await asyncio.wait_for(w.done.wait(), 5)
