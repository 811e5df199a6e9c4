"""Deterministic simulation of a raft cluster built from the pure core.

One seeded `random.Random` decides everything: which message is delivered next (so messages
are reordered), drops, duplicates, partitions, ticks, when each node processes its Ready,
crashes (losing everything not yet persisted) and restarts. The checker asserts election
safety, log matching, leader completeness, state machine safety and ReadIndex safety, and
at the end heals the cluster and checks that it makes progress again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from services.store.raft.core import Config, InitialState, Raft
from services.store.raft.node import can_send_early, needs_sync
from services.store.raft.types import Entry, HardState, Message, MsgType, Ready, Role, SnapshotMeta


class SafetyViolation(AssertionError):
    pass


@dataclass
class Durable:
    """What survives a crash: the raft storage and the (durable) state machine."""

    hard: HardState = field(default_factory=HardState)
    offset: SnapshotMeta = field(default_factory=SnapshotMeta)
    entries: dict[int, Entry] = field(default_factory=dict)
    snap: SnapshotMeta = field(default_factory=SnapshotMeta)
    snap_data: list[tuple[int, int, bytes]] = field(default_factory=list)
    applied: list[tuple[int, int, bytes]] = field(default_factory=list)  # (index, term, data)
    applied_index: int = 0


@dataclass
class Packet:
    msg: Message
    snap_data: list[tuple[int, int, bytes]] | None = None


class Node:
    def __init__(self, sim: Sim, nid: int) -> None:
        self.sim = sim
        self.id = nid
        self.disk = Durable()
        self.disk.offset = SnapshotMeta(voters=sim.voters)
        self.core: Raft | None = None
        self.inbox_snaps: dict[tuple[int, int], list[tuple[int, int, bytes]]] = {}
        self.start()

    def start(self) -> None:
        d = self.disk
        ents = [d.entries[i] for i in sorted(d.entries) if i > d.offset.index]
        for k, e in enumerate(ents):
            assert e.index == d.offset.index + 1 + k, "persisted log has a hole"
        hard = d.hard
        if hard.commit < d.applied_index <= d.offset.index + len(ents):
            hard = HardState(hard.term, hard.vote, d.applied_index)
        init = InitialState(hard, d.offset, ents, d.snap, d.applied_index)
        cfg = Config(
            id=self.id,
            voters=self.sim.voters,
            election_tick=10,
            heartbeat_tick=2,
            max_size_per_msg=self.sim.rng.choice([64, 256, 4096]),
            max_inflight=self.sim.rng.choice([1, 4, 64]),
        )
        self.core = Raft(cfg, random.Random(self.sim.rng.random()), init)
        self.inbox_snaps = {}

    def crash(self) -> None:
        self.core = None

    # one pass of the driver loop
    def process_ready(self, crash_after_persist: bool = False) -> None:
        core = self.core
        assert core is not None
        if not core.has_ready():
            return
        rd = core.ready()
        early = can_send_early(core, rd, self.disk.hard)
        if early:
            self.send(rd)
            if crash_after_persist and self.sim.rng.random() < 0.5:
                self.crash()  # sent, but never persisted
                return
        self.persist(rd)
        if crash_after_persist:
            self.crash()
            return
        if not early:
            self.send(rd)
        for e in rd.committed_entries:
            self.apply(e)
        for rs in rd.read_states:
            self.sim.check_read(self.id, rs.context, rs.index)
        core.advance(rd)
        self.maybe_compact()

    def send(self, rd: Ready) -> None:
        for m in rd.messages:
            data = self.disk.snap_data if m.type is MsgType.SNAP else None
            self.sim.net.append(Packet(m, list(data) if data is not None else None))

    def persist(self, rd: Ready) -> None:
        d = self.disk
        if rd.snapshot is not None:
            snap = rd.snapshot
            data = self.inbox_snaps.pop((snap.index, snap.term))
            d.entries.clear()
            d.offset = snap
            d.snap = snap
            d.snap_data = list(data)
            d.applied = list(data)
            d.applied_index = snap.index
        if rd.entries:
            first = rd.entries[0].index
            for i in [i for i in d.entries if i >= first]:
                del d.entries[i]
            for e in rd.entries:
                d.entries[e.index] = e
        core = self.core
        assert core is not None
        if needs_sync(rd, d.hard):  # like the driver: a commit-only change is not persisted
            d.hard = core.hard_state()

    def apply(self, e: Entry) -> None:
        d = self.disk
        if e.index != d.applied_index + 1:
            raise SafetyViolation(f"node {self.id} applies {e.index} after {d.applied_index}")
        self.sim.check_apply(self.id, e)
        d.applied.append((e.index, e.term, e.data))
        d.applied_index = e.index

    def maybe_compact(self) -> None:
        core = self.core
        assert core is not None
        d = self.disk
        if d.applied_index - d.snap.index < self.sim.snap_every or d.applied_index > core.log.stable:
            return
        term = core.log.term(d.applied_index)
        assert term is not None
        d.snap = SnapshotMeta(d.applied_index, term, self.sim.voters)
        d.snap_data = list(d.applied)
        core.set_snapshot(d.snap)
        keep = self.sim.rng.choice([0, 2, 10])
        off = core.compact(d.applied_index - keep)
        d.offset = off
        for i in [i for i in d.entries if i <= off.index]:
            del d.entries[i]

    def deliver(self, p: Packet) -> None:
        assert self.core is not None
        m = p.msg
        if m.type is MsgType.SNAP:
            assert m.snapshot is not None and p.snap_data is not None
            self.inbox_snaps[(m.snapshot.index, m.snapshot.term)] = p.snap_data
        self.core.step(m)


class Sim:
    def __init__(self, seed: int, n: int, steps: int = 3000, snap_every: int = 15) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.voters = tuple(range(1, n + 1))
        self.steps = steps
        self.snap_every = snap_every
        self.net: list[Packet] = []
        self.partition: dict[int, int] = {}  # node -> side
        self.leaders: dict[int, int] = {}  # term -> leader
        self.committed: dict[int, tuple[int, bytes]] = {}  # index -> (term, data)
        self.max_applied = 0
        self.reads: dict[bytes, int] = {}
        self.proposals = 0
        self.events: list[str] = []
        self.marker = f"{seed}:final".encode()
        self.marker_seen: set[int] = set()
        self.nodes = {i: Node(self, i) for i in self.voters}
        self.drop_rate = self.rng.choice([0.0, 0.05, 0.2])
        self.dup_rate = self.rng.choice([0.0, 0.05])

    # checks -----------------------------------------------------------------------------
    def check_apply(self, nid: int, e: Entry) -> None:
        if e.data == self.marker:
            self.marker_seen.add(nid)
        have = self.committed.get(e.index)
        if have is None:
            self.committed[e.index] = (e.term, e.data)
            self.max_applied = max(self.max_applied, e.index)
        elif have != (e.term, e.data):
            raise SafetyViolation(f"state machine safety: node {nid} applied {e} but others {have}")

    def check_read(self, nid: int, ctx: bytes, index: int) -> None:
        floor = self.reads.pop(ctx, None)
        if floor is not None and index < floor:
            raise SafetyViolation(f"read {ctx!r} on {nid} got index {index} < committed {floor} at request")

    def check_leaders(self) -> None:
        for n in self.nodes.values():
            c = n.core
            if c is None or c.role is not Role.LEADER:
                continue
            prev = self.leaders.get(c.term)
            if prev is None:
                self.leaders[c.term] = n.id
                self.check_completeness(n)
            elif prev != n.id:
                raise SafetyViolation(f"election safety: term {c.term} has leaders {prev} and {n.id}")

    def check_completeness(self, n: Node) -> None:
        c = n.core
        assert c is not None
        for idx, (term, _) in self.committed.items():
            if idx <= c.log.snap.index:
                continue
            if c.log.term(idx) != term:
                raise SafetyViolation(f"leader completeness: leader {n.id} term {c.term} lacks committed {idx}@{term}")

    def check_log_matching(self) -> None:
        logs = {i: n.core.log for i, n in self.nodes.items() if n.core is not None}
        ids = sorted(logs)
        for a_i, a in enumerate(ids):
            for b in ids[a_i + 1 :]:
                la, lb = logs[a], logs[b]
                lo = max(la.first_index(), lb.first_index())
                hi = min(la.last_index(), lb.last_index())
                top = 0
                for i in range(hi, lo - 1, -1):
                    if la.term(i) == lb.term(i):
                        top = i
                        break
                for i in range(lo, top + 1):
                    ea = la.entries[i - la.snap.index - 1]
                    eb = lb.entries[i - lb.snap.index - 1]
                    if (ea.term, ea.data) != (eb.term, eb.data):
                        raise SafetyViolation(f"log matching: nodes {a},{b} differ at {i} below {top}")

    # world ------------------------------------------------------------------------------
    def alive(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.core is not None]

    def connected(self, a: int, b: int) -> bool:
        return self.partition.get(a, 0) == self.partition.get(b, 0)

    def deliver_one(self, idx: int) -> None:
        p = self.net.pop(idx)
        m = p.msg
        dst = self.nodes[m.to]
        ok = dst.core is not None and self.connected(m.frm, m.to) and self.rng.random() >= self.drop_rate
        if m.type is MsgType.SNAP:
            # the driver reports the outcome of a snapshot stream to the sender
            src = self.nodes[m.frm].core
            if src is not None:
                src.report_snapshot(m.to, ok)
        if not ok:
            return
        if self.rng.random() < self.dup_rate:
            self.net.append(p)
        dst.deliver(p)

    def propose(self, n: Node) -> None:
        c = n.core
        assert c is not None
        if c.role is not Role.LEADER or c.lead_transferee:
            return
        k = self.rng.randint(1, 3)
        items = [f"{self.seed}:{self.proposals + i}".encode() for i in range(k)]
        self.proposals += k
        c.propose_batch(items)

    def step_random(self, chaos: bool) -> None:
        r = self.rng.random()
        alive = self.alive()
        if r < 0.40:
            if self.net:
                self.deliver_one(self.rng.randrange(len(self.net)))
        elif r < 0.62:
            if alive:
                self.rng.choice(alive).process_ready()
        elif r < 0.80:
            if alive:
                self.rng.choice(alive).core.tick()  # type: ignore[union-attr]
        elif r < 0.92:
            if alive:
                self.propose(self.rng.choice(alive))
        elif r < 0.96:
            if alive:
                n = self.rng.choice(alive)
                ctx = f"r{self.rng.random()}".encode()
                self.reads[ctx] = self.max_applied
                n.core.read_index(ctx)  # type: ignore[union-attr]
        elif r < 0.965:
            if alive:
                self.rng.choice(alive).core.transfer_leadership(self.rng.choice(self.voters))  # type: ignore[union-attr]
        elif not chaos:
            return
        elif r < 0.969:
            if alive:
                n = self.rng.choice(alive)
                if self.rng.random() < 0.5:
                    n.process_ready(crash_after_persist=True)
                    self.events.append(f"crash-after-persist {n.id}")
                else:
                    n.crash()
                    self.events.append(f"crash {n.id}")
        elif r < 0.985:
            dead = [n for n in self.nodes.values() if n.core is None]
            if dead:
                n = self.rng.choice(dead)
                n.start()
                self.events.append(f"restart {n.id}")
        elif r < 0.99:
            if self.partition or self.rng.random() < 0.5:
                self.partition = {}
            else:
                self.partition = {i: self.rng.randint(0, 1) for i in self.voters}
            self.events.append(f"partition {self.partition}")
        elif r < 0.995 and len(self.net) > 1:
            self.rng.shuffle(self.net)

    def run(self) -> None:
        for _ in range(self.steps):
            self.step_random(chaos=True)
            self.check_leaders()
        self.check_log_matching()
        self.heal_and_check_progress()
        self.check_log_matching()

    def heal_and_check_progress(self) -> None:
        self.partition = {}
        self.drop_rate = 0.0
        self.dup_rate = 0.0
        for n in self.nodes.values():
            if n.core is None:
                n.start()
        proposed_at = -1000
        for it in range(3000):
            for n in self.alive():
                n.process_ready()
            while self.net:
                self.deliver_one(0)
                self.check_leaders()
            if len(self.marker_seen) == len(self.nodes):
                return
            for n in self.alive():
                c = n.core
                assert c is not None
                if c.role is Role.LEADER and it - proposed_at > 100 and not c.lead_transferee:
                    c.propose(self.marker)  # proposals may be lost with a leader change: retry
                    proposed_at = it
                c.tick()
        raise SafetyViolation(
            f"liveness: the healed cluster did not commit a new entry on every node: {self.describe()}"
        )

    def describe(self) -> str:
        out = []
        for n in self.nodes.values():
            c = n.core
            if c is None:
                out.append(f"{n.id}: down")
                continue
            out.append(
                f"{n.id}: {c.role.value} t={c.term} lead={c.lead} commit={c.log.committed} "
                f"last={c.log.last_index()}@{c.log.last_term()} off={c.log.snap.index} "
                f"snap={c.snapshot_meta.index} applied={n.disk.applied_index} "
                f"prs={c.prs if c.role is Role.LEADER else ''}"
            )
        return "; ".join(out)


def run_seed(seed: int, n: int, steps: int = 3000) -> Sim:
    sim = Sim(seed, n, steps)
    try:
        sim.run()
    except Exception as e:
        raise AssertionError(f"raft simulation failed: seed={seed} nodes={n} steps={steps}: {e}") from e
    return sim
