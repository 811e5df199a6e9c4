"""The one place that picks the replication implementation for a store replica.

Every configuration runs raft (RaftReplicator), including a single replica with no peers
(a one-voter group that elects itself at start), so the data dir layout and the write path
are the same everywhere. LocalReplicator remains for tests that want no raft at all.
"""

from __future__ import annotations

import argparse

from pinnace.common import tls
from pinnace.common.tls import TLSConfig
from services.store.raft.replicator import RaftReplicator, parse_peers
from services.store.replication import Replicator, StateMachine


def make_replicator(args: argparse.Namespace, state_machine: StateMachine) -> Replicator:
    """RaftReplicator from --id, --peers "1=host:port,...", --peer-listen, --data-dir (and --tls-dir)."""
    node_id = int(getattr(args, "id", 1) or 1)
    peers = parse_peers(getattr(args, "peers", "") or "")
    if len(peers) <= 1:
        peers = {}
    return RaftReplicator(
        state_machine,
        node_id=node_id,
        data_dir=args.data_dir,
        peers=peers,
        peer_listen=getattr(args, "peer_listen", "") or "",
        tls=_peer_tls(args),
    )


def _peer_tls(args: argparse.Namespace) -> TLSConfig | None:
    """With --tls-dir, raft peers use mutual TLS with the replica's own certificate."""
    tls_dir = getattr(args, "tls_dir", "") or ""
    return tls.load(tls_dir, getattr(args, "tls_name", "") or "store") if tls_dir else None
