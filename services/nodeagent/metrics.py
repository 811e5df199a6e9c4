"""Prometheus metrics of the node agent (served on --metrics-port by pinnace.common.server)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PODS = Gauge("pinnace_nodeagent_pods", "Pods with a worker on this node")
CONTAINER_STARTS = Counter("pinnace_nodeagent_container_starts_total", "Container attempts started", ["result"])
CONTAINER_EXITS = Counter("pinnace_nodeagent_container_exits_total", "Container attempts that ended", ["reason"])
PROBE_FAILURES = Counter(
    "pinnace_nodeagent_probe_failures_total", "Probe results that crossed failureThreshold", ["probe"]
)
POD_START = Histogram(
    "pinnace_nodeagent_pod_start_seconds",
    "Seconds from the worker seeing a pod to reporting it Running",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30),
)
STATUS_UPDATES = Counter("pinnace_nodeagent_status_updates_total", "Pod status writes to the store")
