"""Targeted behaviours of the pure raft core, on a lossless in-memory network."""

from __future__ import annotations

import random

from services.store.raft.core import Config, InitialState, Raft
from services.store.raft.types import Entry, HardState, Message, MsgType, Role, SnapshotMeta


class Net:
    def __init__(self, n: int = 3, **cfg: int) -> None:
        ids = tuple(range(1, n + 1))
        self.nodes = {i: Raft(Config(id=i, voters=ids, **cfg), random.Random(i)) for i in ids}  # type: ignore[arg-type]
        self.down: set[int] = set()
        self.applied: dict[int, list[bytes]] = {i: [] for i in ids}
        self.reads: dict[int, list[tuple[bytes, int]]] = {i: [] for i in ids}

    def pump(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            moved = False
            for i, r in self.nodes.items():
                if i in self.down or not r.has_ready():
                    continue
                rd = r.ready()
                for e in rd.committed_entries:
                    self.applied[i].append(e.data)
                for rs in rd.read_states:
                    self.reads[i].append((rs.context, rs.index))
                r.advance(rd)
                for m in rd.messages:
                    if m.to not in self.down and i not in self.down:
                        self.nodes[m.to].step(m)
                        moved = True
            if not moved:
                return

    def tick_until_leader(self, limit: int = 200) -> int:
        for _ in range(limit):
            for i, r in self.nodes.items():
                if i not in self.down:
                    r.tick()
            self.pump()
            leaders = [i for i, r in self.nodes.items() if r.role is Role.LEADER and i not in self.down]
            if leaders:
                return leaders[0]
        raise AssertionError("no leader")


def test_single_node_elects_itself_and_commits() -> None:
    r = Raft(Config(id=1, voters=(1,)), random.Random(1))
    r.campaign(transfer=False)
    assert r.role is Role.LEADER
    r.propose(b"x")
    rd = r.ready()
    assert [e.data for e in rd.committed_entries] == [b"", b"x"]
    assert rd.hard_state == HardState(1, 1, 2)


def test_election_replication_and_commit() -> None:
    net = Net()
    lead = net.tick_until_leader()
    net.nodes[lead].propose_batch([b"a", b"b"])
    net.pump()
    for i in net.nodes:
        assert net.applied[i][-2:] == [b"a", b"b"]
    assert len({r.term for r in net.nodes.values()}) == 1


def test_leader_commits_only_entries_of_its_own_term() -> None:
    # node 1 holds an entry of term 2 at index 2 that a majority has, then becomes leader in term 3
    log = [Entry(1, 1, b"a"), Entry(2, 2, b"b")]
    init = InitialState(HardState(2, 0, 1), SnapshotMeta(voters=(1, 2, 3)), log, SnapshotMeta(), 1)
    r = Raft(Config(id=1, voters=(1, 2, 3)), random.Random(1), init)
    r.campaign(transfer=True)
    r.step(Message(MsgType.VOTE_RESP, to=1, frm=2, term=3))
    assert r.role is Role.LEADER and r.log.last_index() == 3
    r.prs[2].match = 2  # a majority (1 and 2) has index 2, but it is from term 2
    assert not r._maybe_commit()
    assert r.log.committed == 1
    r.step(Message(MsgType.APP_RESP, to=1, frm=2, term=3, index=3))
    assert r.log.committed == 3


def test_read_index_waits_for_a_heartbeat_quorum() -> None:
    net = Net()
    lead = net.tick_until_leader()
    r = net.nodes[lead]
    r.read_index(b"ctx1")
    rd = r.ready()
    assert not rd.read_states
    assert any(m.type is MsgType.HEARTBEAT and m.context == b"ctx1" for m in rd.messages)
    r.advance(rd)
    for m in rd.messages:
        net.nodes[m.to].step(m)
    net.pump()
    assert net.reads[lead] == [(b"ctx1", r.log.committed)]
    # a follower's read is forwarded to the leader and answered with the leader's commit index
    f = next(i for i in net.nodes if i != lead)
    net.nodes[f].read_index(b"ctx2")
    net.pump()
    assert net.reads[f] == [(b"ctx2", r.log.committed)]


def read_heartbeats(r: Raft, ctx: bytes) -> tuple[list[Message], list[int]]:
    """Start a read on leader r: its messages (taken from its Ready) and who the read's heartbeats go to."""
    r.read_index(ctx)
    rd = r.ready()
    r.advance(rd)
    asked = sorted(m.to for m in rd.messages if m.type is MsgType.HEARTBEAT and m.context == ctx)
    return rd.messages, asked


def test_read_index_asks_the_last_quorum_and_survives_its_silence() -> None:
    net = Net(5)
    lead = net.tick_until_leader()
    r = net.nodes[lead]
    followers = sorted(i for i in net.nodes if i != lead)
    # the first read of the term asks everyone; the two acks that complete its quorum win
    msgs, asked = read_heartbeats(r, b"r1")
    assert asked == followers
    for m in msgs:
        net.nodes[m.to].step(m)
    slow = followers[:2]
    for f in (f for f in followers if f not in slow):  # these two answer first
        rd = net.nodes[f].ready()
        net.nodes[f].advance(rd)
        for resp in rd.messages:
            r.step(resp)
    assert net.reads[lead] == [] and r.read_states  # released by the fast two
    net.pump()
    fast = sorted(f for f in followers if f not in slow)
    # the next read asks only them
    msgs, asked = read_heartbeats(r, b"r2")
    assert asked == fast
    # one of them is silent: the read completes with the next periodic heartbeat to everyone
    net.down.add(fast[0])
    for m in msgs:
        if m.to not in net.down:
            net.nodes[m.to].step(m)
    net.pump()
    assert [c for c, _ in net.reads[lead]] == [b"r1"]
    r.tick()
    net.pump()
    assert [c for c, _ in net.reads[lead]] == [b"r1", b"r2"]
    # and the next read asks the quorum that answered that round, without the silent one
    _, asked = read_heartbeats(r, b"r3")
    assert len(asked) == 2 and fast[0] not in asked


def test_isolated_leader_cannot_serve_reads_and_steps_down() -> None:
    net = Net()
    lead = net.tick_until_leader()
    others = [i for i in net.nodes if i != lead]
    net.down.update(others)
    r = net.nodes[lead]
    r.read_index(b"stale?")
    for _ in range(30):
        r.tick()
        net.pump()
    assert net.reads[lead] == []
    assert r.role is Role.FOLLOWER  # check-quorum


def test_pre_vote_keeps_a_partitioned_node_from_raising_terms() -> None:
    net = Net()
    lead = net.tick_until_leader()
    lonely = next(i for i in net.nodes if i != lead)
    term = net.nodes[lead].term
    net.down.add(lonely)
    for _ in range(100):
        net.nodes[lonely].tick()
        rd = net.nodes[lonely].ready()
        net.nodes[lonely].advance(rd)  # its messages go nowhere
    assert net.nodes[lonely].term == term
    net.down.discard(lonely)
    for _ in range(5):
        for r in net.nodes.values():
            r.tick()
        net.pump()
    assert net.nodes[lead].role is Role.LEADER and net.nodes[lead].term == term


def test_leadership_transfer() -> None:
    net = Net()
    lead = net.tick_until_leader()
    target = next(i for i in net.nodes if i != lead)
    term = net.nodes[lead].term
    net.nodes[lead].transfer_leadership(target)
    net.pump()
    assert net.nodes[target].role is Role.LEADER
    assert net.nodes[target].term == term + 1
    assert net.nodes[lead].role is Role.FOLLOWER


def test_lagging_follower_gets_a_snapshot_after_compaction() -> None:
    net = Net()
    lead = net.tick_until_leader()
    slow = next(i for i in net.nodes if i != lead)
    net.down.add(slow)
    r = net.nodes[lead]
    for k in range(20):
        r.propose(f"v{k}".encode())
        net.pump()
    meta = SnapshotMeta(r.log.applied, r.log.term(r.log.applied) or 0, r.voters)
    r.set_snapshot(meta)
    r.compact(meta.index)
    assert r.log.first_index() == meta.index + 1
    net.down.discard(slow)
    sent: list[Message] = []
    for _ in range(20):
        for n in net.nodes.values():
            n.tick()
        for n in net.nodes.values():
            if not n.has_ready():
                continue
            rd = n.ready()
            n.advance(rd)
            for m in rd.messages:
                if m.type is MsgType.SNAP:
                    sent.append(m)
                    net.nodes[lead].report_snapshot(m.to, True)
                net.nodes[m.to].step(m)
        if sent:
            break
    assert sent and sent[0].snapshot == meta and sent[0].to == slow
    s = net.nodes[slow]
    rd = s.ready()
    assert rd.snapshot == meta
    s.advance(rd)
    r.propose(b"after")
    for _ in range(3):
        for n in net.nodes.values():
            n.tick()
        net.pump()
    assert s.log.committed == r.log.committed and s.log.last_index() == r.log.last_index()
