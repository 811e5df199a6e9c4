"""The one place that picks the replication implementation for a store replica."""

from __future__ import annotations

import argparse

from services.store.local_replicator import LocalReplicator
from services.store.replication import Replicator, StateMachine


def make_replicator(args: argparse.Namespace, state_machine: StateMachine) -> Replicator:
    """LocalReplicator for now (single replica); raft (RaftReplicator) when --peers is given."""
    return LocalReplicator(state_machine, node_id=int(getattr(args, "id", 1) or 1))
