"""Plain data types of the raft core: entries, messages, hard state, snapshots and Ready.

These are the only shapes that cross the boundary between the pure core and its driver;
the wire format (proto/pinnace/v1/raft.proto) is converted to and from them in codec.py.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class MsgType(enum.IntEnum):
    """Raft message kinds exchanged between peers."""

    APP = 1
    APP_RESP = 2
    VOTE = 3
    VOTE_RESP = 4
    PRE_VOTE = 5
    PRE_VOTE_RESP = 6
    HEARTBEAT = 7
    HEARTBEAT_RESP = 8
    SNAP = 9
    READ_INDEX = 10
    READ_INDEX_RESP = 11
    TRANSFER_LEADER = 12
    TIMEOUT_NOW = 13


class EntryType(enum.IntEnum):
    """NORMAL entries carry state-machine commands; EMPTY is the leader's no-op on election."""

    NORMAL = 0
    EMPTY = 1


class Role(enum.Enum):
    """A replica's role in its current term."""

    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(slots=True)
class Entry:
    """One log entry."""

    term: int
    index: int
    data: bytes = b""
    type: EntryType = EntryType.NORMAL

    def size(self) -> int:
        return len(self.data) + 16


@dataclass(slots=True, frozen=True)
class HardState:
    """What must be durable before any message that depends on it leaves the node."""

    term: int = 0
    vote: int = 0
    commit: int = 0


@dataclass(slots=True, frozen=True)
class SnapshotMeta:
    """Position of a snapshot in the log and the voters at that point."""

    index: int = 0
    term: int = 0
    voters: tuple[int, ...] = ()


@dataclass(slots=True)
class Message:
    """A raft message; fields unused by a type stay at their zero value."""

    type: MsgType
    to: int
    frm: int
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: list[Entry] = field(default_factory=list)
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""
    snapshot: SnapshotMeta | None = None


@dataclass(slots=True, frozen=True)
class ReadState:
    """A ReadIndex answer: reads for `context` are linearizable once `index` is applied."""

    index: int
    context: bytes


@dataclass(slots=True)
class Ready:
    """Work handed to the driver: persist (hard_state, snapshot, entries), then send messages,
    then apply committed_entries; finally call `advance(ready)`."""

    hard_state: HardState | None = None
    entries: list[Entry] = field(default_factory=list)
    snapshot: SnapshotMeta | None = None
    messages: list[Message] = field(default_factory=list)
    committed_entries: list[Entry] = field(default_factory=list)
    read_states: list[ReadState] = field(default_factory=list)

    def must_sync(self) -> bool:
        return self.hard_state is not None or bool(self.entries) or self.snapshot is not None

    def empty(self) -> bool:
        return not (self.must_sync() or self.messages or self.committed_entries or self.read_states)


class RaftError(Exception):
    """Base class of errors raised by the raft core."""


class NotLeader(RaftError):
    """The proposal must go to the leader (`leader` is 0 when unknown)."""

    def __init__(self, leader: int) -> None:
        super().__init__(f"not the leader (leader={leader})")
        self.leader = leader


class ProposalDropped(RaftError):
    """The leader cannot accept proposals now (for example during a leadership transfer)."""
