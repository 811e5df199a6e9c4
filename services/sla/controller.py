"""The SLA controller: for each ApiSla, merge the probes' histograms into a sliding-window
percentile, price the selected pods, decide a replica count (services.sla.decide) and scale the
workload; record status, conditions and an Event per decision.

Informer + work queue: handlers only enqueue SLA keys (on create and on spec changes, not on the
controller's own status writes); the worker re-reads the cache. Each SLA is re-evaluated every
`interval` seconds while it exists. Events go through the SDK's recorder (pinnace.client.events), written
in the background between start() and stop().

Decisions look only at the part of the window measured since the last replica change took effect
(all pods ready), so a scale-up is judged by the new pods, not by the samples that caused it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api import apps_pb2, node_pb2, pod_pb2, sla_pb2
from pinnace.client import AsyncClient, Informer, WorkQueue, errors, split_key
from pinnace.client.events import EventRecorder
from pinnace.common.logging import get_logger
from pinnace.common.selectors import selector_from_map
from pinnace.common.units import (
    UnitError,
    format_cost,
    format_duration,
    format_percent,
    parse_cost_per_hour,
    parse_duration,
    parse_percent,
)
from services.sla.collector import Windows
from services.sla.cost import Prices, node_prices, pod_cost
from services.sla.decide import Decision, Observation, Settings, classify, decide

log = get_logger("sla")
RECENT_DECISIONS = 10
# Probes report every couple of seconds, so samples arriving just after a change may predate it.
REPORT_LAG = 2.5
EVENT_COMPONENT = "sla-controller"  # source.component of the controller's Events


@dataclass
class History:
    last_up: float = 0.0
    last_down: float = 0.0
    last_change: float = 0.0
    settled: float = 0.0  # when the last change took effect (every replica ready)
    replicas: int = -1  # the replica count last seen (a change by someone else counts too)
    at_risk_since: float = 0.0  # when the objective went at risk (0: it is not)

    def fresh_since(self) -> float:
        """Start of the part of the window that reflects the current replica count."""
        start = max(self.last_change, self.settled)
        return start + REPORT_LAG if start else 0.0


def _now_ts() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


def _pod_ready(pod: pod_pb2.Pod) -> bool:
    return pod.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions
    )


class SlaController:
    def __init__(
        self,
        client: AsyncClient,
        identity: str,
        prices: Prices = Prices(),
        settings: Settings = Settings(),
        interval: float = 2.0,
    ) -> None:
        self.client = client
        self.identity = identity
        self.prices = prices
        self.settings = settings
        self.interval = interval
        self.slas = Informer(client, sla_pb2.ApiSla)
        self.deployments = Informer(client, apps_pb2.Deployment)
        self.pods = Informer(client, pod_pb2.Pod)
        self.nodes = Informer(client, node_pb2.Node)
        self.queue: WorkQueue[str] = WorkQueue("sla")
        self.windows = Windows(self._window_seconds)
        self.history: dict[str, History] = {}
        self._started = False
        self.recorder = EventRecorder(client, EVENT_COMPONENT)
        self.slas.add_handler(
            on_add=lambda o: self.queue.add(_key(o)),
            on_update=lambda o, n: self._on_update(o, n),
            on_delete=lambda o: self._forget(_key(o)),
        )

    def _on_update(self, old: sla_pb2.ApiSla, new: sla_pb2.ApiSla) -> None:
        if old.metadata.generation != new.metadata.generation or old.spec != new.spec:
            self.queue.add(_key(new))

    def _forget(self, key: str) -> None:
        self.windows.drop(key)
        self.history.pop(key, None)

    def _window_seconds(self, key: str) -> float:
        sla = self.slas.get(key)
        if sla is not None and sla.spec.window:
            try:
                return parse_duration(sla.spec.window)
            except UnitError:
                pass
        return 30.0

    async def start(self) -> None:
        """Start the informers and the event writer (once: leading again after a lost lease reuses them)."""
        if self._started:
            return
        self._started = True
        self.recorder.start()
        for inf in (self.slas, self.deployments, self.pods, self.nodes):
            await inf.start()
        for inf in (self.slas, self.deployments, self.pods, self.nodes):
            await inf.wait_synced()

    async def stop(self) -> None:
        self.queue.shutdown()
        for inf in (self.slas, self.deployments, self.pods, self.nodes):
            await inf.stop()
        await self.recorder.stop(drain=1.0)

    # -- one evaluation ----------------------------------------------------------------------

    def _selected_pods(self, sla: sla_pb2.ApiSla) -> list[pod_pb2.Pod]:
        sel = selector_from_map(sla.spec.selector)
        return [
            p
            for p in self.pods.list(namespace=sla.metadata.namespace)
            if sel.matches(p.metadata.labels) and not p.metadata.HasField("deletion_timestamp")
        ]

    def _target(self, sla: sla_pb2.ApiSla) -> apps_pb2.Deployment | None:
        ns = sla.metadata.namespace
        if sla.spec.target.name:
            return self.deployments.get_by_name(sla.spec.target.name, ns)
        sel = selector_from_map(sla.spec.selector)
        for d in self.deployments.list(namespace=ns):
            if sel.matches(d.spec.template.metadata.labels):
                return d
        return None

    def _cost(self, pods: list[pod_pb2.Pod], template: pod_pb2.PodSpec) -> tuple[float, float]:
        """(current cost of the pods, cost of one more replica) in $/h."""
        total = 0.0
        for p in pods:
            node = self.nodes.get_by_name(p.spec.node_name) if p.spec.node_name else None
            total += pod_cost(p.spec, node_prices(node, self.prices))
        one = total / len(pods) if pods else pod_cost(template, self.prices)
        return total, one

    async def reconcile(self, key: str) -> None:
        sla = self.slas.get(key)
        if sla is None:
            return
        try:
            fraction = parse_percent(sla.spec.percent or "99%")
            objective = parse_duration(sla.spec.latency)
            budget = parse_cost_per_hour(sla.spec.cost) if sla.spec.cost else None
        except UnitError as exc:
            await self._set_status(sla, f"invalid spec: {exc}")
            return
        self.queue.add_after(key, self.interval)
        deploy = self._target(sla)
        now = time.time()
        window = self.windows.get(key)
        if deploy is None:
            await self._set_status(sla, "no Deployment matches the selector")
            return
        pods = self._selected_pods(sla)
        ready = sum(1 for p in pods if _pod_ready(p))
        cost, per_replica = self._cost(pods, deploy.spec.template.spec)
        hist = self.history.setdefault(key, History())
        replicas = deploy.spec.replicas if deploy.spec.HasField("replicas") else 1
        if hist.replicas != replicas:  # a change, ours or anybody's (or the first sight)
            hist.last_change = max(hist.last_change, now)
            hist.replicas = replicas
        if hist.last_change > hist.settled and ready >= replicas:
            hist.settled = now
        since = hist.fresh_since()
        p_ms = window.percentile_ms(fraction, now, since)
        state = classify(p_ms, objective * 1000)
        if state != "AtRisk":
            hist.at_risk_since = 0.0
        elif not hist.at_risk_since:
            hist.at_risk_since = now
        compliance = window.compliance(objective * 1000, now, since)
        obs = Observation(
            percentile_ms=p_ms,
            objective_ms=objective * 1000,
            samples=window.samples(now, since),
            replicas=replicas,
            ready_replicas=ready,
            cost_per_replica=per_replica,
            budget=budget,
            min_replicas=sla.spec.min_replicas if sla.spec.HasField("min_replicas") else 1,
            max_replicas=sla.spec.max_replicas if sla.spec.HasField("max_replicas") else 10,
            since_last_up=now - hist.last_up,
            since_last_down=now - hist.last_down,
            since_last_change=now - hist.last_change,
            fraction=fraction,
            at_risk_for=now - hist.at_risk_since if hist.at_risk_since else 0.0,
        )
        d = decide(obs, self.settings)
        if d.replicas != replicas:
            await self._scale(deploy, d.replicas)
            hist.last_change = now
            hist.replicas = d.replicas
            if d.replicas > replicas:
                hist.last_up = now
            else:
                hist.last_down = now
        await self._record(sla, d, replicas, p_ms, compliance, cost, budget, obs.samples)

    async def _scale(self, deploy: apps_pb2.Deployment, replicas: int) -> None:
        def set_replicas(d: apps_pb2.Deployment) -> None:
            d.spec.replicas = replicas

        await self.client.mutate(apps_pb2.Deployment, deploy.metadata.name, deploy.metadata.namespace, set_replicas)

    async def _record(
        self,
        sla: sla_pb2.ApiSla,
        d: Decision,
        replicas: int,
        p_ms: float | None,
        compliance: float | None,
        cost: float,
        budget: float | None,
        samples: int,
    ) -> None:
        decision = sla_pb2.SlaDecision(
            time=_now_ts(), action=d.action, from_replicas=replicas, to_replicas=d.replicas, reason=d.reason
        )
        changed = False

        def update(s: sla_pb2.ApiSla) -> None:
            nonlocal changed
            st = s.status
            # judged on the stored object (the informer's copy may not show our last write yet)
            last = st.last_decision
            repeat = d.action == "OverBudget" and (last.action, last.to_replicas) == (d.action, d.replicas)
            changed = d.action != "Hold" and not repeat
            if p_ms is not None:
                st.observed_latency = "errors/timeouts" if p_ms == float("inf") else format_duration(p_ms / 1000)
            if compliance is not None:
                st.compliance = format_percent(compliance)
            st.current_cost = format_cost(cost)
            st.current_replicas = replicas
            st.desired_replicas = d.replicas
            st.samples = samples
            st.observed_generation = s.metadata.generation
            conds: dict[str, bool] = {}
            if d.state != "Unknown":  # too few fresh samples: keep the last known state
                conds = {"Met": d.state == "Met", "AtRisk": d.state == "AtRisk", "Violated": d.state == "Violated"}
            over = d.action == "OverBudget" or (budget is not None and cost > budget + 1e-9)
            conds["OverBudget"] = over
            _set_conditions(st, conds, d.reason)
            if changed or repeat or not st.HasField("last_decision"):
                st.last_decision.CopyFrom(decision)
            if changed:
                st.recent_decisions.append(decision)
                del st.recent_decisions[:-RECENT_DECISIONS]

        try:
            sla = await self.client.mutate_status(sla_pb2.ApiSla, sla.metadata.name, sla.metadata.namespace, update)
        except errors.NotFound:
            return
        if changed:
            self._event(sla, d, replicas)

    async def _set_status(self, sla: sla_pb2.ApiSla, message: str) -> None:
        def update(s: sla_pb2.ApiSla) -> None:
            _set_conditions(s.status, {"Met": False}, message)

        try:
            await self.client.mutate_status(sla_pb2.ApiSla, sla.metadata.name, sla.metadata.namespace, update)
        except errors.NotFound:
            pass

    def _event(self, sla: sla_pb2.ApiSla, d: Decision, replicas: int) -> None:
        """An Event per decision that changed something (queued; written in the background)."""
        type_ = "Warning" if d.action == "OverBudget" else "Normal"
        self.recorder.emit(sla, type_, d.action, f"{d.action} {replicas} -> {d.replicas}: {d.reason}")


def _set_conditions(status: sla_pb2.ApiSlaStatus, values: dict[str, bool], message: str) -> None:
    for ctype, on in values.items():
        want = "True" if on else "False"
        cond = next((c for c in status.conditions if c.type == ctype), None)
        if cond is None:
            cond = status.conditions.add(type=ctype)
        if cond.status != want:
            cond.status = want
            cond.last_transition_time.CopyFrom(_now_ts())
        cond.message = message if on else ""


def _key(obj: sla_pb2.ApiSla) -> str:
    return f"{obj.metadata.namespace}/{obj.metadata.name}"


__all__ = ["SlaController", "split_key"]
