"""SQLite raft storage (round trip, truncation, snapshots, failpoints) and a single-replica
RaftReplicator restarting on the same data dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.store.raft.node import NodeOptions
from services.store.raft.replicator import RaftReplicator, parse_peers
from services.store.raft.storage import RaftStorage, StorageError
from services.store.raft.types import Entry, HardState, SnapshotMeta
from tests.support.kvsm import KVStateMachine


def test_round_trip_and_truncation(tmp_path: Path) -> None:
    s = RaftStorage(str(tmp_path))
    s.save(HardState(1, 1, 0), [Entry(1, i, f"e{i}".encode()) for i in range(1, 6)])
    s.save(HardState(2, 2, 3), [Entry(2, 4, b"x")])  # conflicting suffix from index 4 is replaced
    s.close()
    st = RaftStorage(str(tmp_path)).load((1,))
    assert st.hard_state == HardState(2, 2, 3)
    assert [(e.index, e.term, e.data) for e in st.entries] == [
        (1, 1, b"e1"),
        (2, 1, b"e2"),
        (3, 1, b"e3"),
        (4, 2, b"x"),
    ]


def test_snapshot_and_compaction(tmp_path: Path) -> None:
    s = RaftStorage(str(tmp_path))
    s.save(HardState(1, 1, 4), [Entry(1, i) for i in range(1, 6)])
    s.set_snapshot(SnapshotMeta(4, 1, (1,)), SnapshotMeta(2, 1, (1,)), HardState(1, 1, 4))
    st = s.load((1,))
    assert st.offset.index == 2 and st.snapshot.index == 4
    assert [e.index for e in st.entries] == [3, 4, 5]
    s.save(HardState(3, 0, 9), [], snapshot=SnapshotMeta(9, 3, (1,)))  # installed from a leader
    st = s.load((1,))
    assert st.offset == SnapshotMeta(9, 3, (1,)) and st.entries == [] and st.hard_state.commit == 9


def test_failpoint_error_rolls_back(tmp_path: Path) -> None:
    s = RaftStorage(str(tmp_path))
    s.save(HardState(1, 1, 0), [Entry(1, 1)])
    s.set_failpoint("before_fsync", "error")
    with pytest.raises(StorageError):
        s.save(HardState(1, 1, 1), [Entry(1, 2)])
    s.set_failpoint("before_fsync", None)
    st = s.load((1,))
    assert [e.index for e in st.entries] == [1] and st.hard_state.commit == 0
    s.set_failpoint("after_fsync", "sleep(0.01)")
    s.save(HardState(1, 1, 1), [Entry(1, 2)])
    assert [e.index for e in s.load((1,)).entries] == [1, 2]


def test_parse_peers() -> None:
    assert parse_peers("1=127.0.0.1:7100, 2=h:2") == {1: "127.0.0.1:7100", 2: "h:2"}
    with pytest.raises(ValueError):
        parse_peers("1")


async def test_single_replica_restart_keeps_state(tmp_path: Path) -> None:
    opts = NodeOptions(tick_interval=0.01, snapshot_entries=50, keep_entries=10)
    sm = KVStateMachine(str(tmp_path))
    rep = RaftReplicator(sm, 1, str(tmp_path), opts=opts)
    await rep.start()
    for i in range(120):
        assert await rep.propose(f"put k{i % 7} {i}".encode()) == str(i).encode()
    assert await rep.propose(b"cas k0 119 new") == b"new"
    assert await rep.propose(b"cas k0 119 new") == b"fail new"
    await rep.read_barrier()
    st = rep.status()
    assert st.role == "leader" and st.leader_id == 1 and st.applied_index == st.commit_index
    await rep.stop()

    sm2 = KVStateMachine(str(tmp_path))
    applied = sm2.applied_index()
    rep2 = RaftReplicator(sm2, 1, str(tmp_path), opts=opts)
    await rep2.start()
    assert await rep2.propose(b"get k0") == b"new"
    assert sm2.log[0][0] > applied  # nothing was applied twice
    await rep2.stop()


def test_codec_round_trip() -> None:
    from services.store.raft.codec import message_from_pb, message_to_pb
    from services.store.raft.types import EntryType, Message, MsgType

    m = Message(
        MsgType.APP,
        to=2,
        frm=1,
        term=3,
        index=99,
        log_term=3,
        entries=[Entry(3, 100, b"a"), Entry(3, 101, b"", EntryType.EMPTY)],
        commit=98,
        reject=True,
        reject_hint=7,
        context=b"c",
        snapshot=SnapshotMeta(5, 2, (1, 2, 3)),
    )
    assert message_from_pb(message_to_pb(m)) == m
