"""The contract between the state machine (mvcc) and replication (LocalReplicator or raft).

See docs/CONTRACTS.md "Store internals". Both sides import only this module from each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class Unavailable(Exception):
    """No leader (yet), or this replica is stopping: the client should retry, maybe elsewhere."""


class NotLeader(Unavailable):
    """This replica is not the leader and cannot forward; leader_hint is the leader's client address if known."""

    def __init__(self, message: str, leader_hint: str = "") -> None:
        super().__init__(message)
        self.leader_hint = leader_hint


@dataclass
class MemberStatus:
    """One member of the replication group as seen by this replica."""

    id: int
    address: str = ""
    match_index: int = 0
    reachable: bool = True


@dataclass
class ReplicaStatus:
    """This replica's view of replication, served by the Status RPC."""

    id: int
    leader_id: int
    term: int
    commit_index: int
    applied_index: int
    role: str  # leader, follower, candidate, pre-candidate
    members: list[MemberStatus] = field(default_factory=list)


class StateMachine(Protocol):
    """The replicated state machine (services.store.mvcc.MVCCStore)."""

    def apply_batch(self, entries: list[tuple[int, bytes]]) -> list[bytes]: ...

    def applied_index(self) -> int: ...

    def pin_snapshot(self) -> Callable[[str], None]:
        """Pin the current state; the returned function writes exactly that state to a file (from any
        thread, while later entries are applied)."""
        ...

    def restore(self, path: str) -> None: ...


class Replicator(Protocol):
    """Orders proposals and applies them to the state machine (locally, or through raft)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def propose(self, data: bytes) -> bytes: ...

    async def read_barrier(self) -> None: ...

    def status(self) -> ReplicaStatus: ...
