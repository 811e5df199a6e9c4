"""Pinnace's raft: a pure consensus core (core.py), SQLite storage, a gRPC peer transport, an
asyncio driver and the RaftReplicator that the store uses to replicate its state machine."""
