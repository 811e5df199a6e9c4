"""ApiSla validation (units checked at create time, naming the field) and the `get apisla` table."""

from __future__ import annotations

from pinnace.api import sla_pb2
from pinnace.cli.columns import columns_for, render_rows
from pinnace.manifest.validation import validate


def _sla(**spec: object) -> sla_pb2.ApiSla:
    s = sla_pb2.ApiSla()
    s.metadata.name = "web-sla"
    s.metadata.namespace = "default"
    s.spec.percent = "99%"
    s.spec.latency = "200ms"
    s.spec.selector["app"] = "web"
    for k, v in spec.items():
        setattr(s.spec, k, v)
    return s


def _messages(s: sla_pb2.ApiSla) -> list[str]:
    return [f"{p.path}: {p.message}" for p in validate(s)]


def test_valid_sla_has_no_problems() -> None:
    assert _messages(_sla(cost="0.40$/h", window="30s", min_replicas=1, max_replicas=5)) == []


def test_malformed_units_name_the_field() -> None:
    msgs = _messages(_sla(percent="99", latency="fast", cost="x$/h", window="30"))
    assert "spec.cost: 'x$/h' is not a cost: write dollars per hour, e.g. 0.40$/h or $0.40/h" in msgs
    assert any(m.startswith("spec.percent: '99' is not a percentage") for m in msgs)
    assert any(m.startswith("spec.latency: 'fast' is not a duration") for m in msgs)
    assert any(m.startswith("spec.window: '30' is not a duration") for m in msgs)


def test_replica_bounds_selector_and_target() -> None:
    s = _sla(min_replicas=4, max_replicas=2)
    s.spec.selector.clear()
    s.spec.target.kind = "StatefulSet"
    msgs = _messages(s)
    assert any(m.startswith("spec.maxReplicas: must not be less than minReplicas (4)") for m in msgs)
    assert any(m.startswith("spec.selector: required") for m in msgs)
    assert any(m.startswith("spec.target.kind: unsupported value 'StatefulSet'") for m in msgs)
    assert any(m.startswith("spec.latency") for m in _messages(_sla(latency="")))


def test_get_table_shows_target_observed_cost_and_state() -> None:
    s = _sla(cost="0.40$/h")
    s.status.observed_latency = "182ms"
    s.status.compliance = "99.4%"
    s.status.current_cost = "0.12$/h"
    s.status.current_replicas, s.status.desired_replicas = 3, 4
    s.status.conditions.add(type="Violated", status="True")
    s.status.conditions.add(type="OverBudget", status="True")
    cols = columns_for("api_sla")
    headers = [c.header for c in cols]
    assert headers[:7] == ["NAME", "TARGET", "OBSERVED", "COMPLIANCE", "COST/BUDGET", "REPLICAS", "STATE"]
    row = render_rows([s], cols)[0]
    assert row[:7] == ["web-sla", "99%<=200ms", "182ms", "99.4%", "0.12$/h/0.40$/h", "3/4", "Violated,OverBudget"]
