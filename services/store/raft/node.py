"""The asyncio driver around the pure core: the Ready loop, the ticker and the applier.

One loop task owns the core. Each pass steps queued peer messages, ticks and proposals into
the core, then for each Ready: persists hard state + entries (+ snapshot) in one SQLite
transaction on the raft-io thread, sends the messages, queues committed entries for the
applier and calls advance. The applier applies batches with `StateMachine.apply_batch` on
its own thread (one transaction per batch), resolves proposals, and takes snapshots (then the
loop compacts the log). Both threads see whole batches, never single requests.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import heapq
import itertools
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from pinnace.common.tls import TLSConfig
from services.store.raft.core import Config, InitialState, Raft
from services.store.raft.storage import RaftStorage
from services.store.raft.transport import PeerTransport, snapshot_path
from services.store.raft.types import Entry, HardState, Message, NotLeader, Ready, Role, SnapshotMeta
from services.store.replication import StateMachine, Unavailable

log = structlog.get_logger("raft.node")


class ProposalLost(Unavailable):
    """The proposal was accepted but then overwritten by a new leader; it did not happen."""


@dataclass
class NodeOptions:
    tick_interval: float = float(os.environ.get("PINNACE_RAFT_TICK_MS", "100")) / 1000
    election_tick: int = 10
    heartbeat_tick: int = 1
    snapshot_entries: int = int(os.environ.get("PINNACE_RAFT_SNAPSHOT_ENTRIES", "20000"))
    keep_entries: int = int(os.environ.get("PINNACE_RAFT_KEEP_ENTRIES", "5000"))
    max_batch: int = 4096
    # Apply batches up to this size on the loop thread: handing a batch to a worker thread and
    # back costs more latency (wake-ups, the GIL) than the work itself (64 entries: ~1-2 ms).
    inline_max: int = int(os.environ.get("PINNACE_RAFT_INLINE_MAX", "64"))
    proposal_timeout: float = 30.0
    seed: int | None = None


def _fatal(msg: str) -> None:
    log.critical("raft fatal error; exiting", error=msg)
    os._exit(70)


def can_send_early(core: Raft, rd: Ready, persisted: HardState) -> bool:
    """True when this Ready's messages may leave before its persistence (leader, same term/vote)."""
    if core.role is not Role.LEADER or rd.snapshot is not None:
        return False
    hs = rd.hard_state
    return hs is None or (hs.term == persisted.term and hs.vote == persisted.vote)


def needs_sync(rd: Ready, persisted: HardState) -> bool:
    """Entries, a snapshot, or a new term/vote must be durable before going on. A change of the
    commit index alone is not worth an fsync (as in etcd): it is written with the next entries,
    and after a crash it is recovered from the leader (and from the state machine's applied
    index, which only ever trails a commit)."""
    if rd.entries or rd.snapshot is not None:
        return True
    hs = rd.hard_state
    return hs is not None and (hs.term != persisted.term or hs.vote != persisted.vote)


class RaftNode:
    """Runs one raft replica of `state_machine`; see the module docstring."""

    def __init__(
        self,
        node_id: int,
        peers: dict[int, str],
        data_dir: str,
        state_machine: StateMachine,
        opts: NodeOptions | None = None,
        on_fatal: Callable[[str], None] = _fatal,
        tls: TLSConfig | None = None,
    ) -> None:
        self.id = node_id
        self.voters = tuple(sorted(peers)) if peers else (node_id,)
        self.opts = opts or NodeOptions()
        self.sm = state_machine
        self.storage = RaftStorage(data_dir)
        self.snap_dir = os.path.join(data_dir, "raft-snap")
        os.makedirs(self.snap_dir, exist_ok=True)
        self.on_fatal = on_fatal
        self.transport: PeerTransport | None = (
            PeerTransport(node_id, peers, self.snap_dir, tls) if len(self.voters) > 1 else None
        )
        self.core: Raft | None = None
        self._io = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="raft-io")
        self._apply_ex = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="raft-apply")
        self._snap_ex = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="raft-snapshot")
        self._snapshotting: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        self._apply_wake = asyncio.Event()
        self._inbox: list[Message] = []
        self._ticks = 0
        self._proposals: list[tuple[bytes, asyncio.Future[tuple[int, bytes]]]] = []
        self._reads: list[asyncio.Future[int]] = []
        self._read_ctx: dict[bytes, list[asyncio.Future[int]]] = {}
        self._ctx_seq = itertools.count(1)
        # unique per incarnation: a late answer meant for a previous run can never match
        self._ctx_prefix = node_id.to_bytes(4, "big") + os.urandom(8)
        self._pending: dict[int, tuple[int, asyncio.Future[tuple[int, bytes]]]] = {}
        self._pending_since: dict[int, float] = {}  # index -> monotonic time of the first proposal
        self._apply_q: list[Entry | SnapshotMeta] = []
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._wseq = itertools.count()
        self._snap_reports: list[tuple[int, bool]] = []
        self._unreachable: set[int] = set()
        self._new_snapshot: SnapshotMeta | None = None
        self._hard = HardState()
        self._tasks: list[asyncio.Task[None]] = []
        self._leader_changed = asyncio.Event()
        self.applied = 0
        self._snap_index = 0
        self.stopped = False
        self.proposals_total = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        st = await loop.run_in_executor(self._io, self.storage.load, self.voters)
        applied = self.sm.applied_index()
        if applied > st.offset.index and not st.entries and st.hard_state.commit == 0:
            # a state machine that predates this raft log (for example one written without raft)
            log.info("starting raft log after the existing state", applied=applied)
            st.offset = SnapshotMeta(applied, 0, self.voters)
            st.hard_state = HardState(0, 0, applied)
            await loop.run_in_executor(self._io, self.storage.save, st.hard_state, [], None, st.offset)
        if applied < st.offset.index:
            path = snapshot_path(self.snap_dir, st.snapshot)
            log.info("restoring state machine from snapshot", index=st.snapshot.index, applied=applied)
            await loop.run_in_executor(self._apply_ex, self.sm.restore, path)
            applied = self.sm.applied_index()
        cfg = Config(
            id=self.id,
            voters=self.voters,
            election_tick=self.opts.election_tick,
            heartbeat_tick=self.opts.heartbeat_tick,
        )
        rng = random.Random(self.opts.seed if self.opts.seed is not None else os.urandom(8))
        # the state machine only applies committed entries: its applied index is a commit index
        last = st.offset.index + len(st.entries)
        hs = st.hard_state
        if hs.commit < applied <= last:
            hs = HardState(hs.term, hs.vote, applied)
        self.core = Raft(cfg, rng, InitialState(hs, st.offset, st.entries, st.snapshot, applied))
        self._hard = st.hard_state
        self.applied = applied
        self._snap_index = st.snapshot.index
        if self.transport is not None:
            self.transport.on_snapshot_status = self._on_snapshot_status
            self.transport.on_unreachable = self._on_unreachable
            await self.transport.start()
        if len(self.voters) == 1:
            self.core.campaign(transfer=False)
        self._tasks = [
            asyncio.create_task(self._run(), name="raft-loop"),
            asyncio.create_task(self._ticker(), name="raft-ticker"),
            asyncio.create_task(self._applier(), name="raft-applier"),
        ]
        self._wake.set()
        log.info("raft node started", id=self.id, voters=self.voters, term=st.hard_state.term, applied=applied)

    async def stop(self) -> None:
        self.stopped = True
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t
        if self.transport is not None:
            await self.transport.stop()
        err = Unavailable("store replica is stopping")
        for _, fut in self._proposals:
            if not fut.done():
                fut.set_exception(err)
        for _, fut in self._pending.values():
            if not fut.done():
                fut.set_exception(err)
        for futs in self._read_ctx.values():
            for f in futs:
                if not f.done():
                    f.set_exception(err)
        for *_, w in self._waiters:
            if not w.done():
                w.set_exception(err)
        self._io.shutdown(wait=True)
        self._apply_ex.shutdown(wait=True)
        self._snap_ex.shutdown(wait=True)
        self.storage.close()

    # ------------------------------------------------------------------ inputs
    def deliver(self, msgs: list[Message]) -> None:
        """Peer messages from the transport (called on the event loop)."""
        self._inbox.extend(msgs)
        self._wake.set()

    @property
    def leader(self) -> int:
        return self.core.lead if self.core is not None else 0

    @property
    def is_leader(self) -> bool:
        return self.core is not None and self.core.role is Role.LEADER

    async def propose(self, data: bytes) -> tuple[int, bytes]:
        """Propose on this node (must be the leader); resolves with (index, result) once applied
        here. NotLeader if it is not the leader by the time the proposal is stepped."""
        if self.stopped:
            raise Unavailable("store replica is stopping")
        fut: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._proposals.append((data, fut))
        self._wake.set()
        return await fut

    def propose_many(self, items: list[bytes]) -> list[asyncio.Future[tuple[int, bytes]]]:
        """Queue proposals without awaiting them (for forwarded batches); one future each."""
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[tuple[int, bytes]]] = []
        for data in items:
            fut: asyncio.Future[tuple[int, bytes]] = loop.create_future()
            if self.stopped:
                fut.set_exception(Unavailable("store replica is stopping"))
            else:
                self._proposals.append((data, fut))
            futs.append(fut)
        self._wake.set()
        return futs

    async def read_index(self) -> int:
        """A ReadIndex round; returns the index to wait for (many concurrent calls share one round)."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._reads.append(fut)
        self._wake.set()
        return await fut

    async def wait_applied(self, index: int) -> None:
        if self.applied >= index:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (index, next(self._wseq), fut))
        await fut

    async def wait_leader(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while not self.leader:
            left = deadline - time.monotonic()
            if left <= 0:
                return 0
            self._leader_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._leader_changed.wait(), min(left, 0.05))
        return self.leader

    def transfer_leadership(self, to: int) -> None:
        assert self.core is not None
        self.core.transfer_leadership(to)
        self._wake.set()

    def _on_snapshot_status(self, to: int, ok: bool) -> None:
        self._snap_reports.append((to, ok))
        self._wake.set()

    def _on_unreachable(self, to: int) -> None:
        self._unreachable.add(to)
        self._wake.set()

    # ------------------------------------------------------------------ loop
    async def _ticker(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(self.opts.tick_interval)
            self._ticks += 1
            self._wake.set()
            n += 1
            if n % max(1, int(1.0 / self.opts.tick_interval)) == 0:
                self._expire_pending()

    def _expire_pending(self) -> None:
        """Fail proposals that were not applied within proposal_timeout (their entries may
        have been dropped by a new leader whose log never reached that index), and forget read
        rounds whose readers all gave up (a forwarded ReadIndex or its answer can be lost with a
        broken stream, and raft does not resend those)."""
        for ctx in [c for c, futs in self._read_ctx.items() if all(f.done() for f in futs)]:
            del self._read_ctx[ctx]
        if not self._pending:
            return
        deadline = time.monotonic() - self.opts.proposal_timeout
        for idx in [i for i, t in self._pending_since.items() if t <= deadline]:
            self._pending_since.pop(idx, None)
            p = self._pending.pop(idx, None)
            if p is not None and not p[1].done():
                p[1].set_exception(Unavailable(f"proposal at index {idx} not applied in time; outcome unknown"))

    async def _run(self) -> None:
        core = self.core
        assert core is not None
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                lead = core.lead
                self._drain(core)
                while core.has_ready():
                    await self._handle_ready(core, core.ready())
                    self._drain(core)
                if core.lead != lead:
                    self._leader_changed.set()
                    log.info("leader changed", leader=core.lead, term=core.term, role=core.role.value)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("raft loop failed")
            self.on_fatal(f"raft loop: {e!r}")

    def _drain(self, core: Raft) -> None:
        for to, ok in self._snap_reports:
            core.report_snapshot(to, ok)
        self._snap_reports.clear()
        for to in self._unreachable:
            core.report_unreachable(to)
        self._unreachable.clear()
        if self._new_snapshot is not None:
            self._compact(core, self._new_snapshot)
            self._new_snapshot = None
        while self._ticks:
            self._ticks -= 1
            core.tick()
        if self._inbox:
            inbox, self._inbox = self._inbox, []
            for m in inbox:
                core.step(m)
        if self._proposals:
            props, self._proposals = self._proposals, []
            if core.role is not Role.LEADER or core.lead_transferee:
                err: Exception = (
                    NotLeader(core.lead) if core.role is not Role.LEADER else Unavailable("leadership transfer")
                )
                for _, fut in props:
                    if not fut.done():
                        fut.set_exception(err)
            else:
                now = time.monotonic()
                for i in range(0, len(props), self.opts.max_batch):
                    chunk = props[i : i + self.opts.max_batch]
                    idxs = core.propose_batch([d for d, _ in chunk])
                    for idx, (_, fut) in zip(idxs, chunk, strict=True):
                        old = self._pending.get(idx)
                        if old is not None and not old[1].done():
                            old[1].set_exception(ProposalLost("proposal lost in a leader change; retry"))
                        self._pending[idx] = (core.term, fut)
                        self._pending_since[idx] = now
                self.proposals_total += len(props)
        if self._reads:
            reads, self._reads = self._reads, []
            if not core.lead:
                for f in reads:
                    if not f.done():
                        f.set_exception(Unavailable("no raft leader"))
            else:
                ctx = self._ctx_prefix + next(self._ctx_seq).to_bytes(8, "big")
                self._read_ctx[ctx] = reads
                core.read_index(ctx)

    async def _handle_ready(self, core: Raft, rd: Ready) -> None:
        # A leader may send before its own fsync (as etcd's does): followers persist before they
        # acknowledge, and this loop handles no acknowledgement until the fsync below is done.
        # Not when term or vote changed: those must be durable before anyone hears of them.
        early = can_send_early(core, rd, self._hard)
        if early and rd.messages and self.transport is not None:
            self.transport.send(rd.messages)
        if needs_sync(rd, self._hard):
            hs = core.hard_state()  # nothing was stepped since ready(): this matches rd
            await asyncio.get_running_loop().run_in_executor(
                self._io, self.storage.save, hs, rd.entries, rd.snapshot, None
            )
            self._hard = hs
        if not early and rd.messages and self.transport is not None:
            self.transport.send(rd.messages)
        for rs in rd.read_states:
            for fut in self._read_ctx.pop(rs.context, []):
                if not fut.done():
                    fut.set_result(rs.index)
        if rd.snapshot is not None:
            self._apply_q.append(rd.snapshot)
            self._apply_wake.set()
        if rd.committed_entries:
            self._apply_q.extend(rd.committed_entries)
            self._apply_wake.set()
        core.advance(rd)
        if self._read_ctx and not core.lead:
            self._fail_reads("lost the raft leader")

    def _fail_reads(self, why: str) -> None:
        for futs in self._read_ctx.values():
            for f in futs:
                if not f.done():
                    f.set_exception(Unavailable(why))
        self._read_ctx.clear()

    # ------------------------------------------------------------------ apply
    async def _applier(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._apply_wake.wait()
                self._apply_wake.clear()
                while self._apply_q:
                    item = self._apply_q[0]
                    if isinstance(item, SnapshotMeta):
                        self._apply_q.pop(0)
                        await self._restore(item)
                        continue
                    n = 0
                    while n < len(self._apply_q) and n < self.opts.max_batch and isinstance(self._apply_q[n], Entry):
                        n += 1
                    batch: list[Entry] = self._apply_q[:n]  # type: ignore[assignment]
                    del self._apply_q[:n]
                    items = [(e.index, e.data) for e in batch]
                    if n <= self.opts.inline_max:
                        results = self.sm.apply_batch(items)
                    else:
                        results = await loop.run_in_executor(self._apply_ex, self.sm.apply_batch, items)
                    for e, res in zip(batch, results, strict=True):
                        p = self._pending.pop(e.index, None)
                        self._pending_since.pop(e.index, None)
                        if p is not None and not p[1].done():
                            if p[0] == e.term:
                                p[1].set_result((e.index, res))
                            else:
                                p[1].set_exception(ProposalLost("proposal lost in a leader change; retry"))
                    self._set_applied(batch[-1].index)
                    if self.applied - self._snap_index >= self.opts.snapshot_entries and self._snapshotting is None:
                        self._take_snapshot(batch[-1])
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("apply failed")
            self.on_fatal(f"apply: {e!r}")

    def _set_applied(self, index: int) -> None:
        self.applied = index
        while self._waiters and self._waiters[0][0] <= index:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)

    async def _restore(self, meta: SnapshotMeta) -> None:
        path = snapshot_path(self.snap_dir, meta)
        log.info("installing snapshot", index=meta.index, term=meta.term)
        await asyncio.get_running_loop().run_in_executor(self._apply_ex, self.sm.restore, path)
        for idx in [i for i in self._pending if i <= meta.index]:
            _, fut = self._pending.pop(idx)
            self._pending_since.pop(idx, None)
            if not fut.done():
                fut.set_exception(Unavailable("replica replaced its state from a snapshot; outcome unknown"))
        self._snap_index = meta.index
        self._set_applied(meta.index)
        self._cleanup_snapshots(meta)

    def _take_snapshot(self, last: Entry) -> None:
        """Snapshot the state as of `last` (just applied) without stalling apply: the state machine
        pins that state, and a worker thread copies it to a file while later entries are applied."""
        meta = SnapshotMeta(last.index, last.term, self.voters)
        path = snapshot_path(self.snap_dir, meta)
        tmp = path + ".tmp"
        copy = self.sm.pin_snapshot()

        def work() -> None:
            self.storage.failpoint("before_snapshot_copy")
            if os.path.exists(tmp):
                os.unlink(tmp)
            copy(tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)

        fut = asyncio.get_running_loop().run_in_executor(self._snap_ex, work)
        self._snapshotting = fut
        fut.add_done_callback(lambda f: self._snapshot_taken(f, meta))

    def _snapshot_taken(self, fut: asyncio.Future[None], meta: SnapshotMeta) -> None:
        self._snapshotting = None
        if fut.cancelled():
            return
        err = fut.exception()
        if err is not None:  # the log keeps everything until a later snapshot succeeds
            log.error("taking a snapshot failed", index=meta.index, error=repr(err))
            return
        if meta.index <= self._snap_index:  # a snapshot installed from the leader meanwhile is newer
            return
        self._snap_index = meta.index
        self._new_snapshot = meta
        self._wake.set()
        log.info("took snapshot", index=meta.index, term=meta.term)

    def _compact(self, core: Raft, meta: SnapshotMeta) -> None:
        core.set_snapshot(meta)
        off = core.compact(max(0, meta.index - self.opts.keep_entries))
        fut = self._io.submit(self.storage.set_snapshot, meta, off, self._hard)
        fut.add_done_callback(
            lambda f: f.exception() and log.error("saving snapshot meta failed", error=str(f.exception()))
        )
        self._snap_ex.submit(self._cleanup_snapshots, meta)  # unlinking a large file takes milliseconds

    def _cleanup_snapshots(self, keep: SnapshotMeta) -> None:
        name = os.path.basename(snapshot_path(self.snap_dir, keep))
        for f in os.listdir(self.snap_dir):
            if f.startswith("snap-") and f.endswith(".db") and f < name:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.snap_dir, f))

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, object]:
        c = self.core
        if c is None:
            return {"id": self.id, "role": "stopped"}
        return {
            "id": self.id,
            "leader": c.lead,
            "term": c.term,
            "role": c.role.value,
            "commit": c.log.committed,
            "applied": self.applied,
            "match": {p: pr.match for p, pr in c.prs.items()} if c.role is Role.LEADER else {},
        }
