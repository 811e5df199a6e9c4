"""Conversion between the core's dataclasses and the wire messages of proto/pinnace/v1/raft.proto."""

from __future__ import annotations

from pinnace.api import raft_pb2
from services.store.raft.types import Entry, EntryType, Message, MsgType, SnapshotMeta

_ENTRY_TYPES = tuple(EntryType)


def entry_to_pb(e: Entry) -> raft_pb2.RaftEntry:
    return raft_pb2.RaftEntry(term=e.term, index=e.index, type=int(e.type), data=e.data)


def entry_from_pb(p: raft_pb2.RaftEntry) -> Entry:
    return Entry(p.term, p.index, p.data, EntryType(p.type))


def snap_to_pb(s: SnapshotMeta) -> raft_pb2.RaftSnapshotMeta:
    return raft_pb2.RaftSnapshotMeta(index=s.index, term=s.term, voters=list(s.voters))


def snap_from_pb(p: raft_pb2.RaftSnapshotMeta) -> SnapshotMeta:
    return SnapshotMeta(p.index, p.term, tuple(p.voters))


def message_to_pb(m: Message) -> raft_pb2.RaftMessage:
    pb = raft_pb2.RaftMessage(
        type=int(m.type),
        to=m.to,
        sender=m.frm,
        term=m.term,
        log_term=m.log_term,
        index=m.index,
        commit=m.commit,
        reject=m.reject,
        reject_hint=m.reject_hint,
        context=m.context,
    )
    if m.entries:
        add = pb.entries.add
        for e in m.entries:  # attribute assignment is several times faster than keyword construction
            x = add()
            x.term = e.term
            x.index = e.index
            x.data = e.data
            if e.type:
                x.type = e.type
    if m.snapshot is not None:
        pb.snapshot.CopyFrom(snap_to_pb(m.snapshot))
    return pb


def message_from_pb(pb: raft_pb2.RaftMessage) -> Message:
    return Message(
        type=MsgType(pb.type),
        to=pb.to,
        frm=pb.sender,
        term=pb.term,
        log_term=pb.log_term,
        index=pb.index,
        entries=[Entry(e.term, e.index, e.data, _ENTRY_TYPES[e.type]) for e in pb.entries],
        commit=pb.commit,
        reject=pb.reject,
        reject_hint=pb.reject_hint,
        context=pb.context,
        snapshot=snap_from_pb(pb.snapshot) if pb.HasField("snapshot") else None,
    )
