"""Pending ReadIndex requests on the leader, released once a heartbeat round carrying their
context is acknowledged by a quorum (the leader then knows it was still the leader)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from services.store.raft.types import Message


@dataclass(slots=True)
class ReadRequest:
    req: Message
    index: int
    acks: set[int] = field(default_factory=set)


class ReadOnly:
    """FIFO of read requests keyed by context."""

    def __init__(self) -> None:
        self.pending: OrderedDict[bytes, ReadRequest] = OrderedDict()
        # the peers whose acks completed the latest quorum: the fastest to answer a read round
        self.last_quorum: frozenset[int] = frozenset()

    def add(self, req: Message, index: int, self_id: int) -> None:
        if req.context in self.pending:
            return
        self.pending[req.context] = ReadRequest(req, index, {self_id})

    def last_pending_ctx(self) -> bytes:
        return next(reversed(self.pending)) if self.pending else b""

    def ack(self, ctx: bytes, frm: int, quorum: int) -> list[tuple[Message, int]]:
        """Record `frm`'s ack of ctx; returns (request, index) pairs that are now safe."""
        rr = self.pending.get(ctx)
        if rr is None:
            return []
        rr.acks.add(frm)
        if len(rr.acks) < quorum:
            return []
        self.last_quorum = frozenset(rr.acks)
        out: list[tuple[Message, int]] = []
        while self.pending:
            key, r = self.pending.popitem(last=False)
            out.append((r.req, r.index))
            if key == ctx:
                break
        return out
