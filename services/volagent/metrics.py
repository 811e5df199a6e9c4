"""Prometheus metrics of the volume agent (served on --metrics-port by pinnace.common.server)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

MOUNTS = Counter("pinnace_volagent_volume_setups_total", "Volumes set up for pods", ["type"])
MOUNT_ERRORS = Counter("pinnace_volagent_volume_setup_errors_total", "Volume setups that failed", ["type"])
MOUNT_SECONDS = Histogram(
    "pinnace_volagent_mount_volumes_seconds",
    "MountVolumes latency (all of a pod's volumes)",
    buckets=(0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1, 5, 30, 120),
)
UNMOUNTS = Counter("pinnace_volagent_unmounts_total", "Pods whose volumes were torn down")
EVICTIONS = Counter("pinnace_volagent_evictions_total", "Pods evicted for exceeding an emptyDir sizeLimit")
BINDS = Counter("pinnace_binder_binds_total", "Claims bound to volumes")
CONFLICTS = Counter("pinnace_binder_conflicts_total", "Writes that lost a compare-and-swap (retried)")
PROVISIONED = Counter("pinnace_binder_provisioned_total", "Volumes created by the hostPath provisioner")
RECLAIMED = Counter("pinnace_binder_reclaimed_total", "Released volumes acted on, by policy", ["policy"])
