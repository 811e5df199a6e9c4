"""The store: the cluster's source of truth (revisioned KV on SQLite, registry, watch hub, gRPC API)."""
