"""RaftReplicator over real gRPC sockets (in one process) with a small KV state machine:
follower writes are forwarded, reads are linearizable, a replica that fell behind a compacted
log catches up through InstallSnapshot, and leadership moves on request."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.store.raft.node import NodeOptions
from services.store.raft.replicator import RaftReplicator
from tests.support.kvsm import KVStateMachine
from tests.support.store import free_port


def make(tmp: Path, peers: dict[int, str], i: int) -> RaftReplicator:
    opts = NodeOptions(tick_interval=0.02, snapshot_entries=60, keep_entries=10)
    return RaftReplicator(KVStateMachine(str(tmp / f"n{i}")), i, str(tmp / f"n{i}"), peers, opts=opts)


async def leader_of(reps: dict[int, RaftReplicator], timeout: float = 10.0) -> RaftReplicator:
    for _ in range(int(timeout / 0.02)):
        for r in reps.values():
            if r.node.is_leader:
                return r
        await asyncio.sleep(0.02)
    raise AssertionError("no leader")


async def test_forwarding_snapshot_catch_up_and_transfer(tmp_path: Path) -> None:
    peers = {i: f"127.0.0.1:{free_port()}" for i in (1, 2, 3)}
    reps = {i: make(tmp_path, peers, i) for i in peers}
    try:
        for r in reps.values():
            await r.start()
        lead = await leader_of(reps)
        fol = next(r for r in reps.values() if r is not lead)
        assert await fol.propose(b"put a 1") == b"1"  # forwarded to the leader
        await fol.read_barrier()
        assert fol.node.sm.get("a") == "1"  # type: ignore[attr-defined]

        # stop one follower, write enough for snapshots + compaction, bring it back
        lag = next(r for r in reps.values() if r is not lead and r is not fol)
        lag_id = lag.id
        await lag.stop()
        core = lead.node.core
        assert core is not None

        async def write(start: int, count: int) -> None:
            await asyncio.gather(*(lead.propose(f"put k{i} {i}".encode()) for i in range(start, start + count)))

        async def compacted_past(index: int) -> None:
            for _ in range(200):
                if core.log.first_index() > index:
                    return
                await asyncio.sleep(0.02)
            raise AssertionError(f"the leader did not compact its log past {index}")

        await write(0, 150)
        await compacted_past(2)
        # Appends sent before the leader noticed the replica was gone may still wait in its
        # transport queue and reach the replica when it is back; a second round of writes and
        # compaction goes beyond them, so only a snapshot can bring the replica up to date.
        first_round = lead.node.applied
        await write(150, 150)
        await compacted_past(first_round)
        reps[lag_id] = lag = make(tmp_path, peers, lag_id)
        await lag.start()
        for _ in range(500):
            if lag.node.applied >= lead.node.applied:
                break
            await asyncio.sleep(0.02)
        assert lag.node.applied >= lead.node.applied
        assert lag.node.sm.get("k299") == "299"  # type: ignore[attr-defined]
        assert lag.node._snap_index > 0

        # leadership transfer
        lead.node.transfer_leadership(fol.id)
        for _ in range(250):
            if fol.node.is_leader:
                break
            await asyncio.sleep(0.02)
        assert fol.node.is_leader
        assert await lead.propose(b"put b 2") == b"2"  # the old leader now forwards
    finally:
        for r in reps.values():
            await r.stop()


async def test_peers_use_mutual_tls_and_reject_other_identities(tmp_path: Path) -> None:
    import grpc

    from pinnace.api import raft_pb2, raft_pb2_grpc
    from pinnace.common import tls

    pki = tmp_path / "pki"
    tls.ensure_cluster_pki(pki)
    store_cfg = tls.issue(pki, "store", "store")
    other = tls.issue(pki, "nodeagent", "node-1")
    peers = {i: f"127.0.0.1:{free_port()}" for i in (1, 2, 3)}
    opts = NodeOptions(tick_interval=0.02)
    reps = {
        i: RaftReplicator(
            KVStateMachine(str(tmp_path / f"n{i}")), i, str(tmp_path / f"n{i}"), peers, opts=opts, tls=store_cfg
        )
        for i in peers
    }
    try:
        for r in reps.values():
            await r.start()
        lead = await leader_of(reps)
        fol = next(r for r in reps.values() if r is not lead)
        assert await fol.propose(b"put t 1") == b"1"
        async with tls.secure_aio_channel(peers[lead.id], other) as ch:
            stub = raft_pb2_grpc.RaftPeerStub(ch)
            try:
                await stub.Forward(raft_pb2.ForwardRequest(data=b"put evil 1"), timeout=5)
                raise AssertionError("a non-store identity could propose")
            except grpc.aio.AioRpcError as e:
                assert e.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        for r in reps.values():
            await r.stop()
