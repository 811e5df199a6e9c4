"""The pure raft state machine: no I/O, no clock, no threads.

Drive it like etcd's raft library: feed peer messages to `step`, call `tick` on a fixed
interval, submit commands with `propose`, then repeatedly take `ready()`, persist its hard
state, snapshot and entries, send its messages, apply its committed entries and call
`advance(ready)`. Pre-vote and check-quorum are on by default; the election timeout is
randomized from the `random.Random` passed in, so a seeded run is fully deterministic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from services.store.raft.log import RaftLog
from services.store.raft.progress import Progress, ProgressState
from services.store.raft.readonly import ReadOnly
from services.store.raft.types import (
    Entry,
    EntryType,
    HardState,
    Message,
    MsgType,
    NotLeader,
    ProposalDropped,
    RaftError,
    ReadState,
    Ready,
    Role,
    SnapshotMeta,
)

_TRANSFER_CTX = b"transfer"
_VOTE_TYPES = (MsgType.VOTE, MsgType.PRE_VOTE)


@dataclass(slots=True)
class Config:
    """Static parameters of one raft replica."""

    id: int
    voters: tuple[int, ...]
    election_tick: int = 10
    heartbeat_tick: int = 1
    max_size_per_msg: int = 1 << 20
    max_inflight: int = 256
    max_committed_size: int = 4 << 20
    pre_vote: bool = True
    check_quorum: bool = True


@dataclass(slots=True)
class InitialState:
    """What the driver loaded from durable storage at start."""

    hard_state: HardState
    log_offset: SnapshotMeta  # entries up to here are compacted away
    entries: list[Entry]
    snapshot: SnapshotMeta  # latest state-machine snapshot available to send
    applied: int


class Raft:
    """One replica's consensus state. Not thread-safe; one caller at a time."""

    def __init__(self, cfg: Config, rng: random.Random, initial: InitialState | None = None) -> None:
        if cfg.id not in cfg.voters:
            raise RaftError(f"id {cfg.id} is not among voters {cfg.voters}")
        self.cfg = cfg
        self.id = cfg.id
        self.voters = tuple(sorted(cfg.voters))
        self.rng = rng
        init = initial or InitialState(HardState(), SnapshotMeta(voters=self.voters), [], SnapshotMeta(), 0)
        hs = init.hard_state
        self.term = hs.term
        self.vote = hs.vote
        self.log = RaftLog(init.log_offset, init.entries, hs.commit, init.applied)
        self.snapshot_meta = init.snapshot
        self.role = Role.FOLLOWER
        self.lead = 0
        self.prs: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.read_only = ReadOnly()
        self.pending_reads: list[Message] = []  # ReadIndex requests waiting for a commit in this term
        self.lead_transferee = 0
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_timeout = 0
        self.prev_hard = HardState(self.term, self.vote, self.log.committed)
        self._reset_randomized()

    # ----------------------------------------------------------------------------- public API
    @property
    def quorum(self) -> int:
        return len(self.voters) // 2 + 1

    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.log.committed)

    def tick(self) -> None:
        """Advance the logical clock by one tick."""
        self.election_elapsed += 1
        if self.role is Role.LEADER:
            self._tick_heartbeat()
        elif self.election_elapsed >= self.randomized_timeout:
            self.election_elapsed = 0
            self.campaign(transfer=False)

    def propose(self, data: bytes) -> int:
        """Append a command on the leader; returns its index. NotLeader elsewhere."""
        return self.propose_batch([data])[-1]

    def propose_batch(self, items: list[bytes]) -> list[int]:
        if self.role is not Role.LEADER:
            raise NotLeader(self.lead)
        if self.lead_transferee:
            raise ProposalDropped(f"leadership transfer to {self.lead_transferee} in progress")
        last = self.log.last_index()
        ents = [Entry(self.term, last + 1 + i, d) for i, d in enumerate(items)]
        self._append(ents)
        self._bcast_append()
        return [e.index for e in ents]

    def read_index(self, ctx: bytes) -> None:
        """Ask for a linearizable read point; the answer is a ReadState with `ctx` in a Ready.
        Dropped silently when there is no leader (callers time out and retry)."""
        self.step(Message(MsgType.READ_INDEX, to=self.id, frm=self.id, context=ctx))

    def transfer_leadership(self, to: int) -> None:
        self.step(Message(MsgType.TRANSFER_LEADER, to=self.id, frm=to))

    def campaign(self, transfer: bool) -> None:
        """Start an election (through pre-vote unless it is a leadership transfer)."""
        if self.cfg.pre_vote and not transfer:
            self._become_pre_candidate()
            mtype, term = MsgType.PRE_VOTE, self.term + 1
        else:
            self._become_candidate()
            mtype, term = MsgType.VOTE, self.term
        if self._poll(self.id, True) >= self.quorum:
            if mtype is MsgType.PRE_VOTE:
                self.campaign(transfer=True)
            else:
                self._become_leader()
            return
        ctx = _TRANSFER_CTX if transfer else b""
        for p in self.voters:
            if p != self.id:
                self._send(
                    Message(
                        mtype,
                        to=p,
                        frm=self.id,
                        term=term,
                        index=self.log.last_index(),
                        log_term=self.log.last_term(),
                        context=ctx,
                    )
                )

    def report_snapshot(self, to: int, ok: bool) -> None:
        """The driver finished (or failed) streaming a snapshot to `to`."""
        pr = self.prs.get(to)
        if self.role is not Role.LEADER or pr is None or pr.state is not ProgressState.SNAPSHOT:
            return
        if not ok:
            pr.pending_snapshot = 0
        pr.become_probe()
        pr.probe_sent = True  # wait for the next heartbeat response before probing again

    def report_unreachable(self, to: int) -> None:
        pr = self.prs.get(to)
        if self.role is Role.LEADER and pr is not None and pr.state is ProgressState.REPLICATE:
            pr.become_probe()

    def set_snapshot(self, meta: SnapshotMeta) -> None:
        """The driver saved a state-machine snapshot at meta.index (<= applied)."""
        if meta.index > self.snapshot_meta.index:
            self.snapshot_meta = meta

    def compact(self, index: int) -> SnapshotMeta:
        """Forget log entries up to index (covered by a snapshot); returns the new log offset."""
        return self.log.compact(min(index, self.snapshot_meta.index), self.voters)

    def has_ready(self) -> bool:
        return bool(
            self.msgs
            or self.read_states
            or self.log.pending_snapshot is not None
            or self.log.stable < self.log.last_index()
            or self.log.has_next_committed()
            or self.hard_state() != self.prev_hard
        )

    def ready(self) -> Ready:
        rd = Ready()
        hs = self.hard_state()
        if hs != self.prev_hard:
            rd.hard_state = hs
        rd.snapshot = self.log.pending_snapshot
        rd.entries = self.log.unstable_entries()
        if self.log.has_next_committed():
            rd.committed_entries = self.log.next_committed(self.cfg.max_committed_size)
        rd.messages, self.msgs = self.msgs, []
        rd.read_states, self.read_states = self.read_states, []
        return rd

    def advance(self, rd: Ready) -> None:
        if rd.hard_state is not None:
            self.prev_hard = rd.hard_state
        if rd.snapshot is not None:
            self.log.snapshot_installed(rd.snapshot)
            self.set_snapshot(rd.snapshot)
        if rd.entries:
            last = rd.entries[-1]
            self.log.stable_to(last.index, last.term)
        if rd.committed_entries:
            self.log.applied_to(rd.committed_entries[-1].index)

    # ----------------------------------------------------------------------------- roles
    def _reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = 0
        self.lead = 0
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self._reset_randomized()
        self.votes = {}
        self.lead_transferee = 0
        self.read_only = ReadOnly()
        self.pending_reads = []
        last = self.log.last_index()
        self.prs = {p: Progress(last + 1, self.cfg.max_inflight) for p in self.voters}
        self.prs[self.id].match = last

    def _reset_randomized(self) -> None:
        et = self.cfg.election_tick
        self.randomized_timeout = et + self.rng.randrange(et)

    def _become_follower(self, term: int, lead: int) -> None:
        self._reset(term)
        self.lead = lead
        self.role = Role.FOLLOWER

    def _become_pre_candidate(self) -> None:
        self.votes = {}
        self.lead = 0
        self.role = Role.PRE_CANDIDATE

    def _become_candidate(self) -> None:
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = Role.CANDIDATE

    def _become_leader(self) -> None:
        self._reset(self.term)
        self.lead = self.id
        self.role = Role.LEADER
        self.prs[self.id].become_replicate()
        # An empty entry of the new term lets earlier-term entries commit (raft section 5.4.2).
        self._append([Entry(self.term, self.log.last_index() + 1, b"", EntryType.EMPTY)])
        self._bcast_append()

    def _poll(self, frm: int, granted: bool) -> int:
        self.votes.setdefault(frm, granted)
        return sum(1 for v in self.votes.values() if v)

    def _rejections(self) -> int:
        return sum(1 for v in self.votes.values() if not v)

    # ----------------------------------------------------------------------------- stepping
    def step(self, m: Message) -> None:
        """Process one message (from a peer, or local with term 0)."""
        if m.term == 0:
            pass
        elif m.term > self.term:
            if m.type in _VOTE_TYPES:
                force = m.context == _TRANSFER_CTX
                in_lease = self.cfg.check_quorum and self.lead != 0 and self.election_elapsed < self.cfg.election_tick
                if not force and in_lease:
                    return  # we heard from a leader recently: ignore the disruptor
            if m.type is MsgType.PRE_VOTE:
                pass  # a pre-vote never changes our term
            elif m.type is MsgType.PRE_VOTE_RESP and not m.reject:
                pass  # granted pre-votes carry the future term; counted below
            else:
                lead = m.frm if m.type in (MsgType.APP, MsgType.HEARTBEAT, MsgType.SNAP) else 0
                self._become_follower(m.term, lead)
        elif m.term < self.term:
            if m.type in (MsgType.HEARTBEAT, MsgType.APP) and (self.cfg.check_quorum or self.cfg.pre_vote):
                # A stale leader: answer with our term so it steps down.
                self._send(Message(MsgType.APP_RESP, to=m.frm, frm=self.id, term=self.term))
            elif m.type is MsgType.PRE_VOTE:
                self._send(Message(MsgType.PRE_VOTE_RESP, to=m.frm, frm=self.id, term=self.term, reject=True))
            return

        if m.type in _VOTE_TYPES:
            self._handle_vote(m)
            return
        if self.role is Role.LEADER:
            self._step_leader(m)
        elif self.role in (Role.CANDIDATE, Role.PRE_CANDIDATE):
            self._step_candidate(m)
        else:
            self._step_follower(m)

    def _handle_vote(self, m: Message) -> None:
        pre = m.type is MsgType.PRE_VOTE
        can_vote = self.vote == m.frm or (self.vote == 0 and self.lead == 0) or (pre and m.term > self.term)
        resp = MsgType.PRE_VOTE_RESP if pre else MsgType.VOTE_RESP
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            self._send(Message(resp, to=m.frm, frm=self.id, term=m.term))
            if not pre:
                self.election_elapsed = 0
                self.vote = m.frm
        else:
            self._send(Message(resp, to=m.frm, frm=self.id, term=self.term, reject=True))

    def _step_candidate(self, m: Message) -> None:
        want = MsgType.PRE_VOTE_RESP if self.role is Role.PRE_CANDIDATE else MsgType.VOTE_RESP
        t = m.type
        if t in (MsgType.APP, MsgType.HEARTBEAT, MsgType.SNAP):
            self._become_follower(m.term, m.frm)
            self._step_follower(m)
        elif t is want:
            granted = self._poll(m.frm, not m.reject)
            if granted >= self.quorum:
                if self.role is Role.PRE_CANDIDATE:
                    self.campaign(transfer=True)
                else:
                    self._become_leader()
            elif self._rejections() >= self.quorum:
                self._become_follower(self.term, 0)
        elif t is MsgType.TIMEOUT_NOW:
            pass
        elif t is MsgType.READ_INDEX and m.frm == self.id:
            pass  # no leader: dropped

    def _step_follower(self, m: Message) -> None:
        t = m.type
        if t is MsgType.APP:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_append(m)
        elif t is MsgType.HEARTBEAT:
            self.election_elapsed = 0
            self.lead = m.frm
            self.log.commit_to(min(m.commit, self.log.last_index()))
            self._send(Message(MsgType.HEARTBEAT_RESP, to=m.frm, frm=self.id, context=m.context))
        elif t is MsgType.SNAP:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_snapshot(m)
        elif t is MsgType.TRANSFER_LEADER:
            if self.lead:
                m.to = self.lead
                self._send(m)
        elif t is MsgType.TIMEOUT_NOW:
            if self.id in self.prs or self.id in self.voters:
                self.campaign(transfer=True)
        elif t is MsgType.READ_INDEX:
            if self.lead:
                m.to = self.lead
                self._send(m)
        elif t is MsgType.READ_INDEX_RESP:
            self.read_states.append(ReadState(m.index, m.context))

    def _handle_append(self, m: Message) -> None:
        if m.index < self.log.committed:
            self._send(Message(MsgType.APP_RESP, to=m.frm, frm=self.id, index=self.log.committed))
            return
        last = self.log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last is not None:
            self._send(Message(MsgType.APP_RESP, to=m.frm, frm=self.id, index=last))
            return
        hint = self.log.find_conflict_by_term(min(m.index, self.log.last_index()), m.log_term)
        self._send(
            Message(
                MsgType.APP_RESP,
                to=m.frm,
                frm=self.id,
                index=m.index,
                reject=True,
                reject_hint=hint,
                log_term=self.log.term(hint) or 0,
            )
        )

    def _handle_snapshot(self, m: Message) -> None:
        snap = m.snapshot
        assert snap is not None
        if snap.index <= self.log.committed:
            pass
        elif self.log.match_term(snap.index, snap.term):
            self.log.commit_to(snap.index)
        else:
            self.log.restore(snap)
        self._send(
            Message(
                MsgType.APP_RESP,
                to=m.frm,
                frm=self.id,
                index=self.log.last_index() if self.log.pending_snapshot is not None else self.log.committed,
            )
        )

    def _step_leader(self, m: Message) -> None:
        t = m.type
        if t is MsgType.READ_INDEX:
            self._leader_read_index(m)
            return
        if t is MsgType.TRANSFER_LEADER:
            self._leader_transfer(m.frm)
            return
        pr = self.prs.get(m.frm)
        if pr is None:
            return
        if t is MsgType.APP_RESP:
            pr.recent_active = True
            if m.reject:
                hint = m.reject_hint
                if m.log_term > 0:
                    hint = self.log.find_conflict_by_term(hint, m.log_term)
                if pr.maybe_decr_to(m.index, hint):
                    if pr.state is ProgressState.REPLICATE:
                        pr.become_probe()
                    self._send_append(m.frm)
                return
            old_paused = pr.is_paused()
            if pr.maybe_update(m.index):
                if pr.state is ProgressState.PROBE:
                    pr.become_replicate()
                elif pr.state is ProgressState.SNAPSHOT and pr.match >= pr.pending_snapshot:
                    pr.become_probe()
                    pr.become_replicate()
                elif pr.state is ProgressState.REPLICATE:
                    pr.free_le(m.index)
                if self._maybe_commit():
                    self._bcast_append()
                elif old_paused:
                    self._send_append(m.frm)
                while self._maybe_send_append(m.frm, send_if_empty=False):
                    pass
                if m.frm == self.lead_transferee and pr.match == self.log.last_index():
                    self._send(Message(MsgType.TIMEOUT_NOW, to=m.frm, frm=self.id))
        elif t is MsgType.HEARTBEAT_RESP:
            pr.recent_active = True
            pr.probe_sent = False
            if pr.state is ProgressState.REPLICATE and len(pr.inflights) >= pr.max_inflight:
                pr.inflights.popleft()
            if pr.match < self.log.last_index():
                self._send_append(m.frm)
            if m.context:
                for req, index in self.read_only.ack(m.context, m.frm, self.quorum):
                    self._answer_read(req, index)

    # ----------------------------------------------------------------------------- leader helpers
    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        if self.election_elapsed >= self.cfg.election_tick:
            self.election_elapsed = 0
            if self.cfg.check_quorum:
                active = sum(1 for p, pr in self.prs.items() if p == self.id or pr.recent_active)
                for p, pr in self.prs.items():
                    if p != self.id:
                        pr.recent_active = False
                if active < self.quorum:
                    self._become_follower(self.term, 0)
                    return
            self.lead_transferee = 0  # a transfer that did not finish in time is abandoned
        if self.heartbeat_elapsed >= self.cfg.heartbeat_tick:
            self.heartbeat_elapsed = 0
            self._bcast_heartbeat(self.read_only.last_pending_ctx())

    def _append(self, ents: list[Entry]) -> None:
        last = self.log.append(ents)
        self.prs[self.id].maybe_update(last)
        self._maybe_commit()

    def _maybe_commit(self) -> bool:
        matches = sorted((self.prs[p].match for p in self.voters), reverse=True)
        mci = matches[self.quorum - 1]
        if mci > self.log.committed and self.log.term(mci) == self.term:
            self.log.commit_to(mci)
            if self.pending_reads:
                reads, self.pending_reads = self.pending_reads, []
                for r in reads:
                    self._leader_read_index(r)
            return True
        return False

    def _committed_in_term(self) -> bool:
        return self.log.term(self.log.committed) == self.term

    def _bcast_append(self) -> None:
        for p in self.voters:
            if p != self.id:
                self._send_append(p)

    def _bcast_heartbeat(self, ctx: bytes) -> None:
        self._heartbeat([p for p in self.voters if p != self.id], ctx)

    def _heartbeat(self, peers: list[int], ctx: bytes) -> None:
        for p in peers:
            commit = min(self.prs[p].match, self.log.committed)
            self._send(Message(MsgType.HEARTBEAT, to=p, frm=self.id, commit=commit, context=ctx))

    def _read_heartbeats(self, ctx: bytes) -> None:
        """Heartbeats for a ReadIndex round go only to the followers whose acks completed the
        previous round's quorum (the fastest to answer), when they are still enough for one: any
        quorum's acknowledgement proves leadership, and each message saved is a stream write and
        read on two replicas. Otherwise (first read of a term, a changed quorum) to every follower.
        If a chosen follower stays silent, the next periodic heartbeat (which goes to everyone and
        carries the newest pending context) completes the round and the quorum that answers it
        becomes the new choice."""
        fast = sorted(p for p in self.read_only.last_quorum if p != self.id and p in self.prs)
        if len(fast) < self.quorum - 1:
            self._bcast_heartbeat(ctx)
        else:
            self._heartbeat(fast, ctx)

    def _send_append(self, to: int) -> None:
        self._maybe_send_append(to, send_if_empty=True)

    def _maybe_send_append(self, to: int, send_if_empty: bool) -> bool:
        pr = self.prs[to]
        if pr.is_paused():
            return False
        prev = pr.next - 1
        log_term = self.log.term(prev)
        ents = self.log.slice(pr.next, self.log.last_index() + 1, self.cfg.max_size_per_msg)
        if log_term is None or ents is None:
            return self._send_snapshot(to, pr)
        if not ents and not send_if_empty:
            return False
        self._send(
            Message(
                MsgType.APP,
                to=to,
                frm=self.id,
                index=prev,
                log_term=log_term,
                entries=ents,
                commit=self.log.committed,
            )
        )
        if ents:
            pr.sent_entries(ents[-1].index)
        return True

    def _send_snapshot(self, to: int, pr: Progress) -> bool:
        if not pr.recent_active:
            return False
        snap = self.snapshot_meta
        if snap.index == 0:
            raise RaftError("need a snapshot to send but none is available")
        pr.become_snapshot(snap.index)
        self._send(Message(MsgType.SNAP, to=to, frm=self.id, snapshot=snap))
        return True

    def _leader_read_index(self, m: Message) -> None:
        if len(self.voters) == 1:
            self._answer_read(m, self.log.committed)
            return
        if not self._committed_in_term():
            self.pending_reads.append(m)
            return
        self.read_only.add(m, self.log.committed, self.id)
        self._read_heartbeats(m.context)

    def _answer_read(self, m: Message, index: int | None = None) -> None:
        idx = self.log.committed if index is None else index
        if m.frm == self.id or m.frm == 0:
            self.read_states.append(ReadState(idx, m.context))
        else:
            self._send(Message(MsgType.READ_INDEX_RESP, to=m.frm, frm=self.id, index=idx, context=m.context))

    def _leader_transfer(self, to: int) -> None:
        if to not in self.prs or to == self.id:
            return
        if self.lead_transferee:
            if self.lead_transferee == to:
                return
            self.lead_transferee = 0
        self.election_elapsed = 0
        self.lead_transferee = to
        if self.prs[to].match == self.log.last_index():
            self._send(Message(MsgType.TIMEOUT_NOW, to=to, frm=self.id))
        else:
            self._send_append(to)

    def _send(self, m: Message) -> None:
        if m.type in (MsgType.READ_INDEX, MsgType.TRANSFER_LEADER):
            m.term = 0  # forwarded requests are term-less, like local messages
        elif m.type not in _VOTE_TYPES and m.type not in (MsgType.VOTE_RESP, MsgType.PRE_VOTE_RESP):
            m.term = self.term
        self.msgs.append(m)
