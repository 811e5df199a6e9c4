"""ApiSla end to end on a lab cluster: a service whose latency grows with its load, a load step
driven from inside a node namespace at its ClusterIP; the SLA controller scales it up until the
objective is met, caps it at the budget (OverBudget), and scales it back down when the load
stops. Root only; all traffic stays inside the lab's namespaces."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from pinnace.api import cluster_pb2, service_pb2, sla_pb2
from pinnace.client import errors
from tests.e2e.sla import scenario
from tests.support.cluster import LabCluster
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the cluster lives in network namespaces"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2"),
]

PREFIX = "pns"
T = TypeVar("T")
# Short cool-downs for the test (the controller reads PINNACE_<FLAG> through pinnace up).
CONTROLLER_ENV = {"PINNACE_UP_COOLDOWN": "4", "PINNACE_DOWN_COOLDOWN": "5"}
# 50 ms per request in flight; 95% within 600 ms: one replica fails it under 14 clients.
APP = dict(unit=0.05, latency="600ms", percent="95%", cost="1$/h", max_replicas=8, window="15s")
POD_COST = 0.1 * 0.04 + (64 / 1024) * 0.005  # 100m CPU, 64Mi at the default prices


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCluster]:
    if os.path.exists(f"/run/netns/{PREFIX}-cp"):
        pytest.skip(f"a test cluster with prefix {PREFIX} is already running")
    saved = {k: os.environ.get(k) for k in CONTROLLER_ENV}
    os.environ.update(CONTROLLER_ENV)
    try:
        c = LabCluster(tmp_path_factory.mktemp("sla"), nodes=2, store_replicas=1, prefix=PREFIX)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        c.up()
        yield c
    finally:
        c.down()
        left = c.leftovers() + [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/pinnace-{PREFIX}")]
        assert not left, f"pinnace down left things behind: {left}"


def _events(c: LabCluster) -> list[cluster_pb2.Event]:
    assert c.client is not None
    evs = c.client.list(cluster_pb2.Event, namespace="default").items
    return [e for e in evs if e.involved_object.kind == "ApiSla"]


def test_invalid_sla_is_refused_naming_the_field(cluster: LabCluster) -> None:
    path = cluster.base / "bad.yaml"
    path.write_text(scenario.manifests(name="bad", cost="x$/h").split("---")[-1])
    with pytest.raises(AssertionError) as failed:
        cluster.cli("apply", "-f", str(path))
    assert "spec.cost" in str(failed.value) and "'x$/h' is not a cost" in str(failed.value), failed.value
    assert cluster.client is not None
    with pytest.raises(errors.NotFound):
        cluster.client.get(sla_pb2.ApiSla, "bad-sla", "default")


def test_scales_up_to_the_objective_caps_at_budget_and_back_down(cluster: LabCluster) -> None:
    assert cluster.client is not None
    scenario.apply(cluster, scenario.manifests(**APP))  # type: ignore[arg-type]
    # Probes flow and the idle service meets its objective with one replica.
    eventually(lambda: scenario.condition(s := scenario.sla(cluster), "Met") and s.status.samples > 0, 90, what="Met")
    assert scenario.replicas(cluster) == 1
    ip = cluster.client.get(service_pb2.Service, "slow", "default").spec.cluster_ip
    load = scenario.start_load(cluster, cluster.ns("node1"), ip, concurrency=14, seconds=150)
    try:
        # The load step violates the objective; the controller scales up until it is met again.
        eventually(lambda: scenario.replicas(cluster) >= 2, 40, what="a scale up")
        eventually(
            lambda: scenario.condition(scenario.sla(cluster), "Met") and scenario.replicas(cluster) >= 2,
            90,
            what="the objective met again under load",
        )
        met_at = scenario.replicas(cluster)
        st = scenario.sla(cluster).status
        assert 2 <= met_at <= APP["max_replicas"], met_at  # type: ignore[operator]
        assert any(d.action == "ScaleUp" for d in st.recent_decisions)
        assert st.observed_latency and st.compliance and st.current_cost

        # A budget for two replicas: it scales down to what the budget allows and reports
        # OverBudget instead of scaling beyond, while the load keeps violating the objective.
        def set_budget(s: sla_pb2.ApiSla) -> None:
            s.spec.cost = f"{2.5 * POD_COST:.4f}$/h"

        cluster.client.mutate(sla_pb2.ApiSla, "slow-sla", "default", set_budget)
        eventually(lambda: scenario.replicas(cluster) == 2, 30, what="down to the budget")
        # Still violated with two: it wants more, says OverBudget (a Warning event) and stays at two.
        eventually(
            lambda: any(e.reason == "OverBudget" and e.type == "Warning" for e in _events(cluster)),
            45,
            what="an OverBudget event",
        )
        assert scenario.condition(scenario.sla(cluster), "OverBudget")
        seen = []
        for _ in range(8):
            seen.append(scenario.replicas(cluster))
            time.sleep(1)
        assert max(seen) == 2, seen
    finally:
        load.stop()

    # Load gone: comfortably met, so it gives replicas back, one at a time, down to minReplicas.
    eventually(lambda: scenario.replicas(cluster) == 1, 90, what="back down to one replica")
    eventually(lambda: not scenario.condition(scenario.sla(cluster), "OverBudget"), 30, what="OverBudget cleared")
    reasons = {e.reason for e in _events(cluster)}
    assert {"ScaleUp", "ScaleDown", "OverBudget"} <= reasons, reasons
    table = cluster.cli("get", "apisla")
    assert "slow-sla" in table and "95%<=600ms" in table and "COST/BUDGET" in table, table
    described = cluster.cli("describe", "apisla", "slow-sla")
    assert "RecentDecisions" in described and "ScaleDown" in described and "sla-controller" in described
