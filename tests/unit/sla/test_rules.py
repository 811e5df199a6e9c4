"""The SLA's percentile window, cost model and decision rule."""

import random

import pytest

from pinnace.api import node_pb2, pod_pb2
from services.sla.cost import PRICE_CPU, Prices, node_prices, pod_cost
from services.sla.decide import Observation, Settings, decide, down_samples
from services.sla.histogram import Window


def test_window_percentile_and_expiry() -> None:
    w = Window(10)
    for i in range(100):
        w.observe(10 if i < 95 else 400, now=1000.0)
    assert w.percentile_ms(0.9, now=1000.5) == 10
    assert w.percentile_ms(0.99, now=1000.5) == 400
    assert w.compliance(200, now=1000.5) == pytest.approx(0.95)
    assert w.percentile_ms(0.99, now=1011) is None  # slid out of the window


def test_window_errors_count_as_slow() -> None:
    w = Window(10)
    w.add([0] * 0 or _counts_at(5, 98), errors=2, now=5.0)
    assert w.percentile_ms(0.99, now=5.0) == float("inf")
    assert w.compliance(200, now=5.0) == pytest.approx(0.98)


def _counts_at(latency_ms: float, n: int) -> list[int]:
    from services.sla.histogram import bucket_of, empty_counts

    c = empty_counts()
    c[bucket_of(latency_ms)] = n
    return list(c)


def test_cost_model_uses_node_prices() -> None:
    spec = pod_pb2.PodSpec(containers=[pod_pb2.Container(name="a")])
    spec.containers[0].resources.requests["cpu"].value = "500m"
    spec.containers[0].resources.requests["memory"].value = "1Gi"
    node = node_pb2.Node()
    node.metadata.labels[PRICE_CPU] = "0.10"
    prices = node_prices(node, Prices(cpu_hour=0.04, memory_gib_hour=0.01))
    assert pod_cost(spec, prices) == pytest.approx(0.5 * 0.10 + 1 * 0.01)


def _obs(p: float | None, replicas: int = 2, **kw: object) -> Observation:
    base: dict[str, object] = dict(
        percentile_ms=p, objective_ms=200, samples=100, replicas=replicas, ready_replicas=replicas,
        cost_per_replica=0.1, budget=None, min_replicas=1, max_replicas=10,
        since_last_up=1000, since_last_down=1000, since_last_change=1000,
    )  # fmt: skip
    base.update(kw)
    return Observation(**base)  # type: ignore[arg-type]


def test_violation_scales_up_proportionally_but_at_most_double() -> None:
    d = decide(_obs(300))
    assert (d.action, d.replicas, d.state) == ("ScaleUp", 3, "Violated")
    assert decide(_obs(2000)).replicas == 4


def test_at_risk_adds_one_and_comfortable_removes_one() -> None:
    assert decide(_obs(180)).replicas == 3
    assert decide(_obs(50)).action == "ScaleDown"
    assert decide(_obs(150)).action == "Hold"


def test_budget_caps_and_reports_over_budget() -> None:
    d = decide(_obs(400, replicas=3, budget=0.3))
    assert (d.action, d.replicas) == ("OverBudget", 3)
    d = decide(_obs(400, replicas=2, budget=0.3))
    assert (d.action, d.replicas) == ("ScaleUp", 3)


def test_cooldowns_hold() -> None:
    assert decide(_obs(400, since_last_change=2)).action == "Hold"
    assert decide(_obs(50, since_last_up=5)).action == "Hold"
    assert decide(_obs(400, ready_replicas=1)).action == "Hold"


def test_no_flapping_on_noise_around_the_objective() -> None:
    """Noisy measurements between the thresholds never scale down right after scaling up."""
    rng = random.Random(7)
    replicas, last_up, last_down, last_change, changes = 3, 1e9, 1e9, 1e9, []
    for t in range(600):
        p = rng.uniform(120, 195)  # comfortably met .. at risk, never under 50%
        d = decide(_obs(p, replicas=replicas, since_last_up=t - last_up if last_up < 1e9 else 1e9,
                        since_last_down=1e9 if last_down == 1e9 else t - last_down,
                        since_last_change=1e9 if last_change == 1e9 else t - last_change), Settings())  # fmt: skip
        if d.replicas != replicas:
            changes.append((t, d.action))
            last_change = t
            if d.replicas > replicas:
                last_up = t
            else:
                last_down = t
            replicas = d.replicas
    assert all(a == "ScaleUp" for _, a in changes)
    assert replicas <= 10


def test_window_since_counts_only_slots_after_a_change() -> None:
    w = Window(30)
    for _ in range(50):
        w.observe(900, now=100.2)  # before the change
    for _ in range(50):
        w.observe(20, now=105.5)
    assert w.percentile_ms(0.99, now=106) == 900
    assert w.percentile_ms(0.99, now=106, since=104.5) == 20
    assert w.samples(106, since=104.5) == 50
    assert w.compliance(200, now=106, since=100.0) == pytest.approx(0.5)


def test_p99_of_a_hundred_samples_is_the_99th_not_the_max() -> None:
    w = Window(10)
    for i in range(100):
        w.observe(400 if i == 0 else 10, now=1.0)
    assert w.percentile_ms(0.99, now=1.0) == 10


def test_scale_down_only_when_one_fewer_is_predicted_to_stay_comfortable() -> None:
    assert decide(_obs(90, replicas=2)).action == "Hold"  # 0.45 now, 0.9 with one replica
    d = decide(_obs(60, replicas=2))
    assert (d.action, d.replicas) == ("ScaleDown", 1)


def test_scale_down_waits_for_a_real_percentile() -> None:
    assert decide(_obs(50, samples=60)).action == "Hold"  # p99 of 60 samples is really a p98
    assert decide(_obs(50, samples=60, fraction=0.95)).action == "ScaleDown"
    assert down_samples(0.999, Settings()) == Settings().max_down_samples


def test_above_budget_scales_down_to_what_it_allows() -> None:
    d = decide(_obs(400, replicas=5, budget=0.25))
    assert (d.action, d.replicas) == ("ScaleDown", 2)


def test_errors_are_a_violation_with_a_readable_reason() -> None:
    d = decide(_obs(float("inf"), replicas=2))
    assert (d.action, d.replicas, d.state) == ("ScaleUp", 4, "Violated")
    assert "errors/timeouts" in d.reason


def test_scale_up_waits_for_fresh_samples() -> None:
    assert decide(_obs(400, samples=5)).action == "Hold"


def test_at_risk_adds_a_replica_only_when_it_persists() -> None:
    assert decide(_obs(180, at_risk_for=2)).action == "Hold"
    d = decide(_obs(180, at_risk_for=Settings().at_risk_hold))
    assert (d.action, d.replicas) == ("ScaleUp", 3)
    assert decide(_obs(300, at_risk_for=0)).action == "ScaleUp"  # a violation does not wait
