"""The controllers: ReplicaSet, Deployment, Endpoints, node lifecycle, node IPAM and garbage collection,
each in the client-go pattern (shared informers, handlers that only enqueue keys, workers that re-read
the cache) and each active in one process at a time through its own Lease."""
