"""Prometheus metrics of the netagent (served on --metrics-port by pinnace.common.server)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PROXY_SYNC_SECONDS = Histogram(
    "pinnace_netagent_proxy_sync_seconds",
    "Duration of a proxy sync (render + iptables-restore)",
    ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
)
PROXY_SYNC_ERRORS = Counter("pinnace_netagent_proxy_sync_errors_total", "Failed proxy syncs")
DNS_QUERIES = Counter("pinnace_netagent_dns_queries_total", "DNS queries answered")
PODS = Gauge("pinnace_netagent_pods", "Pods with an address on this node")
OVERLAY_PEERS = Gauge("pinnace_netagent_overlay_peers", "Remote nodes programmed in the overlay")
