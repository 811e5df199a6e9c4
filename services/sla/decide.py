"""The scaling rule: from the observed percentile, the objective, the cost and the budget to a
replica count — with hysteresis (separate thresholds up and down) and cool-downs so that noisy
measurements do not make it flap."""

from __future__ import annotations

import math
from dataclasses import dataclass

AT_RISK = 0.85  # observed above 85% of the objective: at risk
COMFORTABLE = 0.5  # observed under 50% of the objective: room to scale down


@dataclass(frozen=True)
class Observation:
    percentile_ms: float | None  # None: no samples yet
    objective_ms: float
    samples: int
    replicas: int  # current desired replicas of the workload
    ready_replicas: int
    cost_per_replica: float  # $/h of one more pod
    budget: float | None  # $/h, None = no budget
    min_replicas: int
    max_replicas: int
    since_last_up: float  # seconds since the last scale up
    since_last_down: float
    since_last_change: float


@dataclass(frozen=True)
class Decision:
    action: str  # ScaleUp, ScaleDown, Hold, OverBudget
    replicas: int
    state: str  # Met, AtRisk, Violated, Unknown
    reason: str


@dataclass(frozen=True)
class Settings:
    min_samples: int = 20
    up_cooldown: float = 10.0  # after a change, wait for new pods to count in the window
    down_cooldown: float = 45.0
    max_step_factor: float = 2.0  # never more than double at once


def affordable(obs: Observation) -> int:
    if obs.budget is None or obs.cost_per_replica <= 0:
        return obs.max_replicas
    return max(obs.min_replicas, math.floor(obs.budget / obs.cost_per_replica + 1e-9))


def decide(obs: Observation, s: Settings = Settings()) -> Decision:
    cap = min(obs.max_replicas, affordable(obs))
    cur = obs.replicas
    if cur < obs.min_replicas:
        return Decision("ScaleUp", obs.min_replicas, "Unknown", f"below minReplicas {obs.min_replicas}")
    if obs.percentile_ms is None or obs.samples < s.min_samples:
        return Decision("Hold", cur, "Unknown", f"{obs.samples} samples in the window; waiting for {s.min_samples}")
    ratio = obs.percentile_ms / obs.objective_ms
    state = "Violated" if ratio > 1 else ("AtRisk" if ratio > AT_RISK else "Met")
    if state != "Met":
        if obs.ready_replicas < cur or obs.since_last_change < s.up_cooldown:
            return Decision("Hold", cur, state, "waiting for the last change to take effect")
        if ratio > 1:
            want = math.ceil(cur * min(ratio, s.max_step_factor))
            want = max(want, cur + 1)
        else:
            want = cur + 1
        if want > cap:
            if cap <= cur:
                why = "budget" if cap < obs.max_replicas else "maxReplicas"
                action = "OverBudget" if why == "budget" else "Hold"
                return Decision(action, cur, state, f"{state}: would scale to {want} but {why} allows {cap}")
            want = cap
        return Decision(
            "ScaleUp", want, state, f"p={obs.percentile_ms:.0f}ms vs objective {obs.objective_ms:.0f}ms ({state})"
        )
    if cur > cap:
        return Decision("ScaleDown", cap, state, f"cost above budget: down to {cap}")
    if (
        ratio < COMFORTABLE
        and cur > obs.min_replicas
        and obs.since_last_up >= s.down_cooldown
        and obs.since_last_down >= s.down_cooldown
    ):
        return Decision(
            "ScaleDown",
            cur - 1,
            state,
            f"p={obs.percentile_ms:.0f}ms is under {COMFORTABLE:.0%} of the objective; saving one replica",
        )
    return Decision("Hold", cur, state, f"p={obs.percentile_ms:.0f}ms within objective {obs.objective_ms:.0f}ms")
