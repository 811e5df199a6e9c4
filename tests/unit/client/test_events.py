"""The SDK's EventRecorder: involvedObject (with a field path), repeat counting, start/flush/stop, and
best effort (bad objects, failed writes, an identity that may not update Events, rate limiting)."""

from __future__ import annotations

import asyncio
from typing import Any

from pinnace.api import cluster_pb2, pod_pb2
from pinnace.client import AsyncClient, errors
from pinnace.client.events import EventRecorder


def _pod(name: str = "web-1") -> pod_pb2.Pod:
    p = pod_pb2.Pod()
    p.metadata.name, p.metadata.namespace = name, "default"
    p.spec.containers.add(name="web", image="img")
    return p


async def test_field_path_source_and_repeat_counting(client: AsyncClient) -> None:
    pod = await client.create(_pod())
    rec = EventRecorder(client, "nodeagent", host="node-1")
    msg = "Back-off restarting failed container web"
    rec.start()
    try:
        rec.emit(pod, "Warning", "BackOff", msg, field_path="spec.containers{web}")
        assert await rec.flush(5)
        rec.emit(pod, "Warning", "BackOff", msg, field_path="spec.containers{web}")
        rec.emit(pod, "Normal", "Scheduled", "assigned")  # no field path: the pod itself
        assert await rec.flush(5)
    finally:
        await rec.stop()
    evs = {e.reason: e for e in (await client.list(cluster_pb2.Event, namespace="default")).items}
    assert set(evs) == {"BackOff", "Scheduled"}
    back = evs["BackOff"]
    assert back.count == 2 and back.type == "Warning"
    ref = back.involved_object
    assert (ref.kind, ref.api_version, ref.namespace, ref.name) == ("Pod", "v1", "default", "web-1")
    assert ref.uid == pod.metadata.uid and ref.resource_version == pod.metadata.resource_version
    assert ref.field_path == "spec.containers{web}"
    assert (back.source.component, back.source.host) == ("nodeagent", "node-1")
    assert (back.reporting_component, back.reporting_instance) == ("nodeagent", "node-1")
    assert back.metadata.name.startswith("web-1.") and back.metadata.namespace == "default"
    assert evs["Scheduled"].involved_object.field_path == "" and evs["Scheduled"].count == 1
    assert rec.written == 3 and rec.dropped == 0


async def test_start_is_idempotent_and_stop_keeps_the_rest_queued(client: AsyncClient) -> None:
    pod = await client.create(_pod())
    rec = EventRecorder(client, "pv-binder")
    assert not rec.running and await rec.flush(0.1)  # nothing queued, nothing to wait for
    rec.emit(pod, "Normal", "A", "queued before start")
    assert not await rec.flush(0.1)  # nobody writes it yet
    rec.start()
    task = rec._task
    rec.start()
    assert rec._task is task and rec.running
    assert await rec.flush(5)
    await rec.stop()
    await rec.stop()  # twice is fine
    assert not rec.running
    rec.emit(pod, "Normal", "B", "queued after stop")
    assert rec.queue.qsize() == 1
    rec.start()
    await rec.stop(drain=5)  # a drained stop writes what is queued
    assert rec.queue.empty()
    reasons = sorted(e.reason for e in (await client.list(cluster_pb2.Event, namespace="default")).items)
    assert reasons == ["A", "B"]


def test_emit_never_raises_and_needs_no_running_loop() -> None:
    rec = EventRecorder(None, "sla-controller", burst=2, qps=0.0)  # type: ignore[arg-type]
    rec.emit(cluster_pb2.EventSource(), "Normal", "X", "not a kind")  # no metadata: dropped, not raised
    assert rec.dropped == 1 and rec.queue.empty()
    rec.emit(_pod(), "Normal", "A", "1")
    rec.emit(_pod(), "Normal", "A", "2")
    rec.emit(_pod(), "Normal", "A", "3")  # over the burst: dropped
    assert rec.queue.qsize() == 2 and rec.dropped == 2


class _StubClient:
    """Creates fail once with an unexpected error; updates are forbidden."""

    def __init__(self) -> None:
        self.created: list[cluster_pb2.Event] = []
        self.updates = 0
        self.failures = 1

    async def create(self, ev: cluster_pb2.Event) -> cluster_pb2.Event:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("connection reset")
        out = cluster_pb2.Event()
        out.CopyFrom(ev)
        out.metadata.resource_version = str(len(self.created) + 1)
        self.created.append(out)
        return out

    async def update(self, ev: Any) -> Any:
        self.updates += 1
        raise errors.Forbidden("node may not update events")


async def test_failed_writes_and_forbidden_updates_are_best_effort() -> None:
    stub = _StubClient()
    rec = EventRecorder(stub, "nodeagent", host="n1")  # type: ignore[arg-type]
    rec.start()
    try:
        for _ in range(4):
            rec.emit(_pod(), "Warning", "Unhealthy", "Liveness probe failed", field_path="spec.containers{web}")
            assert await rec.flush(5)
        assert rec.running  # the failed create did not stop the writer
    finally:
        await rec.stop()
    # the first create failed; the next created; a repeat tried one update, was forbidden, and from
    # then on each repeat is created anew without asking again
    assert len(stub.created) == 3 and stub.updates == 1
    assert all(e.involved_object.field_path == "spec.containers{web}" for e in stub.created)


async def test_stop_without_start_and_a_caller_run_task(client: AsyncClient) -> None:
    pod = await client.create(_pod())
    rec = EventRecorder(client, "default-scheduler", host="sched-0")
    await rec.stop()
    task = asyncio.create_task(rec.run(workers=1))  # the scheduler's and controllers' way
    await asyncio.sleep(0)
    rec.emit(pod, "Normal", "Scheduled", "Successfully assigned default/web-1 to n1")
    assert await rec.flush(5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    evs = (await client.list(cluster_pb2.Event, namespace="default")).items
    assert [e.source.component for e in evs] == ["default-scheduler"]
