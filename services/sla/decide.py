"""The scaling rule: from the observed percentile, the objective, the cost and the budget to a
replica count — with hysteresis (separate thresholds up and down) and cool-downs so that noisy
measurements do not make it flap."""

from __future__ import annotations

import math
from dataclasses import dataclass

AT_RISK = 0.85  # observed above 85% of the objective: at risk
COMFORTABLE = 0.5  # observed under 50% of the objective: room to scale down...
AFTER_DOWN = 0.7  # ...if one replica fewer is predicted to stay under 70% of it


@dataclass(frozen=True)
class Observation:
    percentile_ms: float | None  # None: no samples yet; inf: errors or timeouts at that rank
    objective_ms: float
    samples: int  # samples behind percentile_ms (those taken since the last change settled)
    replicas: int  # current desired replicas of the workload
    ready_replicas: int
    cost_per_replica: float  # $/h of one more pod
    budget: float | None  # $/h, None = no budget
    min_replicas: int
    max_replicas: int
    since_last_up: float  # seconds since the last scale up
    since_last_down: float
    since_last_change: float
    fraction: float = 0.99  # the objective's share of requests (spec.percent)
    at_risk_for: float = math.inf  # seconds the objective has been at risk without a break


@dataclass(frozen=True)
class Decision:
    action: str  # ScaleUp, ScaleDown, Hold, OverBudget
    replicas: int
    state: str  # Met, AtRisk, Violated, Unknown
    reason: str


@dataclass(frozen=True)
class Settings:
    min_samples: int = 20  # to act on a violation
    up_cooldown: float = 5.0  # after a change (fresh samples from the new pods are required too)
    down_cooldown: float = 45.0
    max_step_factor: float = 2.0  # never more than double at once
    max_down_samples: int = 200  # cap on the evidence a scale down waits for
    at_risk_hold: float = 6.0  # at risk (not violated) this long before adding a replica


def down_samples(fraction: float, s: Settings) -> int:
    """Samples a scale down needs: enough that the percentile is a real one (100 for p99)."""
    tail = max(1e-6, 1.0 - fraction)
    return max(s.min_samples, min(s.max_down_samples, math.ceil(1.0 / tail)))


def fmt_ms(ms: float) -> str:
    return "errors/timeouts" if math.isinf(ms) else f"{ms:.0f}ms"


def classify(percentile_ms: float | None, objective_ms: float) -> str:
    """Met, AtRisk or Violated for an observed percentile; Unknown without one."""
    if percentile_ms is None:
        return "Unknown"
    ratio = percentile_ms / objective_ms
    return "Violated" if ratio > 1 else ("AtRisk" if ratio > AT_RISK else "Met")


def affordable(obs: Observation) -> int:
    if obs.budget is None or obs.cost_per_replica <= 0:
        return obs.max_replicas
    return max(obs.min_replicas, math.floor(obs.budget / obs.cost_per_replica + 1e-9))


def decide(obs: Observation, s: Settings = Settings()) -> Decision:
    cap = min(obs.max_replicas, affordable(obs))
    cur = obs.replicas
    if cur < obs.min_replicas:
        return Decision("ScaleUp", obs.min_replicas, "Unknown", f"below minReplicas {obs.min_replicas}")
    if cur > cap:
        why = "the budget" if cap < obs.max_replicas else "maxReplicas"
        return Decision("ScaleDown", cap, "Unknown", f"{cur} replicas exceed what {why} allows ({cap})")
    if obs.percentile_ms is None or obs.samples < s.min_samples:
        return Decision("Hold", cur, "Unknown", f"{obs.samples} fresh samples; waiting for {s.min_samples}")
    p, objective = obs.percentile_ms, obs.objective_ms
    ratio = p / objective
    state = classify(p, objective)
    evidence = f"p{obs.fraction * 100:g}={fmt_ms(p)} vs objective {fmt_ms(objective)} over {obs.samples} samples"
    if state != "Met":
        if obs.ready_replicas < cur or obs.since_last_change < s.up_cooldown:
            return Decision("Hold", cur, state, f"{evidence}; waiting for the last change to take effect")
        if ratio > 1:
            want = max(math.ceil(cur * min(ratio, s.max_step_factor)), cur + 1)
        elif obs.at_risk_for < s.at_risk_hold:
            return Decision("Hold", cur, state, f"{evidence}; at risk for {obs.at_risk_for:.0f}s, watching")
        else:
            want = cur + 1
        if want > cap:
            if cap <= cur:
                if cap < obs.max_replicas:
                    return Decision("OverBudget", cur, state, f"{evidence}; needs {want} but the budget allows {cap}")
                return Decision("Hold", cur, state, f"{evidence}; needs {want} but maxReplicas is {cap}")
            want = cap
        return Decision("ScaleUp", want, state, f"{evidence} ({state})")
    predicted = ratio * cur / (cur - 1) if cur > 1 else math.inf
    if (
        ratio < COMFORTABLE
        and predicted < AFTER_DOWN
        and cur > obs.min_replicas
        and obs.samples >= down_samples(obs.fraction, s)
        and obs.since_last_up >= s.down_cooldown
        and obs.since_last_down >= s.down_cooldown
    ):
        return Decision("ScaleDown", cur - 1, state, f"{evidence}: comfortably met; one replica fewer saves cost")
    return Decision("Hold", cur, state, f"{evidence}: within objective")
