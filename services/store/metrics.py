"""Prometheus gauges of a store replica, computed when scraped (nothing on the request path)."""

from __future__ import annotations

from prometheus_client import Gauge

from services.store.mvcc import MVCCStore
from services.store.replication import Replicator
from services.store.watch import WatchHub

REVISION = Gauge("pinnace_store_revision", "Current revision of this replica's state")
COMPACT = Gauge("pinnace_store_compact_revision", "Oldest revision kept in the watch history")
DB_BYTES = Gauge("pinnace_store_db_bytes", "Size of state.db plus its WAL")
WATCHERS = Gauge("pinnace_store_watchers", "Open watch streams")
APPLIED = Gauge("pinnace_store_applied_index", "Last replicated entry applied to the state")
IS_LEADER = Gauge("pinnace_store_is_leader", "1 when this replica is the leader")


def register(store: MVCCStore, hub: WatchHub, replicator: Replicator) -> None:
    REVISION.set_function(store.revision)
    COMPACT.set_function(store.compact_revision)
    DB_BYTES.set_function(store.db_size)
    WATCHERS.set_function(lambda: hub.watchers)
    APPLIED.set_function(store.applied_index)
    IS_LEADER.set_function(lambda: 1.0 if replicator.status().role == "leader" else 0.0)
