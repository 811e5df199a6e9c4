"""The SLA controller against an in-memory store: a violated objective scales the Deployment up
(with status, a recent decision and an Event), a budget caps it with OverBudget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from pinnace.api import apps_pb2, cluster_pb2, pod_pb2, sla_pb2
from pinnace.client import AsyncClient
from pinnace.client.testing import FakeStore
from services.sla.controller import History, SlaController
from services.sla.histogram import bucket_of, empty_counts

KEY = "default/web-sla"


@pytest.fixture
async def env() -> AsyncIterator[tuple[FakeStore, SlaController, AsyncClient]]:
    fake = FakeStore()
    server, endpoint = await fake.serve()
    client = AsyncClient([endpoint])
    d = apps_pb2.Deployment()
    d.metadata.name, d.metadata.namespace = "web", "default"
    d.spec.replicas = 2
    d.spec.selector.match_labels["app"] = "web"
    d.spec.template.metadata.labels["app"] = "web"
    c = d.spec.template.spec.containers.add(name="c", image="x")
    c.resources.requests["cpu"].value = "1"
    fake.put(d)
    for i in range(2):
        p = pod_pb2.Pod()
        p.metadata.name, p.metadata.namespace = f"web-{i}", "default"
        p.metadata.labels["app"] = "web"
        p.spec.CopyFrom(d.spec.template.spec)
        p.status.phase = "Running"
        p.status.conditions.add(type="Ready", status="True")
        fake.put(p)
    s = sla_pb2.ApiSla()
    s.metadata.name, s.metadata.namespace = "web-sla", "default"
    s.spec.percent, s.spec.latency = "99%", "200ms"
    s.spec.selector["app"] = "web"
    fake.put(s)
    ctl = SlaController(client, identity="sla@test")
    await ctl.start()
    # As if the controller had watched the workload settle long ago: the whole window counts.
    ctl.history[KEY] = History(replicas=2)
    try:
        yield fake, ctl, client
    finally:
        await ctl.stop()
        await client.close()
        await server.stop(None)


def _observe(ctl: SlaController, latency_ms: float, n: int = 100) -> None:
    counts = empty_counts()
    counts[bucket_of(latency_ms)] = n
    ctl.windows.get(KEY).add(counts, 0, now=time.time())


async def test_violation_scales_up_and_records_the_decision(
    env: tuple[FakeStore, SlaController, AsyncClient],
) -> None:
    _, ctl, client = env
    _observe(ctl, 300)
    await ctl.reconcile(KEY)
    d = await client.get(apps_pb2.Deployment, "web", "default")
    assert d.spec.replicas == 3  # 300/200 = 1.5 x 2 replicas
    s = await client.get(sla_pb2.ApiSla, "web-sla", "default")
    assert s.status.observed_latency == "300ms" and s.status.desired_replicas == 3
    assert [c.type for c in s.status.conditions if c.status == "True"] == ["Violated"]
    assert s.status.recent_decisions[-1].action == "ScaleUp"
    assert await ctl.recorder.flush(5)
    evs = (await client.list(cluster_pb2.Event, namespace="default")).items
    assert [e.reason for e in evs] == ["ScaleUp"] and evs[0].involved_object.kind == "ApiSla"
    ev = evs[0]
    assert ev.type == "Normal" and ev.message.startswith("ScaleUp 2 -> 3: ")
    assert (ev.involved_object.name, ev.involved_object.uid) == ("web-sla", s.metadata.uid)
    assert ev.involved_object.api_version == "pinnace.io/v1" and ev.source.component == "sla-controller"


async def test_budget_caps_with_over_budget_and_one_event(env: tuple[FakeStore, SlaController, AsyncClient]) -> None:
    fake, ctl, client = env
    s = await client.get(sla_pb2.ApiSla, "web-sla", "default")
    s.spec.cost = "0.09$/h"  # two pods of 1 CPU at 0.04$/h
    fake.put(s)
    await ctl.slas.wait_synced()
    for _ in range(50):
        if ctl.slas.get(KEY) is not None and ctl.slas.get(KEY).spec.cost:  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.02)
    _observe(ctl, 400)
    await ctl.reconcile(KEY)
    await ctl.reconcile(KEY)
    d = await client.get(apps_pb2.Deployment, "web", "default")
    assert d.spec.replicas == 2
    s = await client.get(sla_pb2.ApiSla, "web-sla", "default")
    assert any(c.type == "OverBudget" and c.status == "True" for c in s.status.conditions)
    assert await ctl.recorder.flush(5)
    evs = (await client.list(cluster_pb2.Event, namespace="default")).items
    assert [e.reason for e in evs] == ["OverBudget"], [e.reason for e in evs]
    assert evs[0].type == "Warning" and evs[0].count == 1
