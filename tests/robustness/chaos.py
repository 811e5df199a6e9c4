"""Fault injection against a real 3-replica store while clients write, CAS and watch; then checks.

`run_chaos(base, seconds, ...) -> Report` (used by tests/robustness and bench/robustness.py):

- Workload (asyncio, raw gRPC stubs, one attempt per operation, a random replica per call):
  register clients read, blindly write and compare-and-swap (Get, then Update with the read
  resource_version) the spec.holderIdentity of a few Leases; "ack" clients create (one by one,
  or several in one Batch call, which replicate as one packed raft entry) and delete uniquely
  named Leases; watchers watch the namespace (one unfiltered, one with a label selector) from
  the start revision and, when a stream breaks, reopen it on another replica from the last
  revision they saw. Every value written is unique, so an outcome-unknown operation (timeout,
  UNAVAILABLE, ...) can be resolved by the checker.
- Faults, one at a time, on a random replica (the leader half of the time): kill -9 and
  restart; SIGSTOP, wait, SIGCONT; restart with the storage failpoint
  PINNACE_RAFT_FAILPOINTS="before_fsync=sleep(S)" (slow disk), run, restart clean; restart with
  "after_fsync=error" (fsync fails: the replica must exit, then it is restarted clean); and, when
  the replicas run in network namespaces (netchaos.py), "partition": iptables DROP on the
  replica's underlay interface inside its namespace for a few seconds.
  Recovery time = from the healing action until a linearizable read and a write both succeed
  through the healed replica.
- After healing: the register history is linearizable (services/store/raft/linearizability),
  every acknowledged create is present unless its delete was acknowledged (and nothing never
  attempted is), every replica holds the same objects at the same revision, and every watcher's
  event sequence equals the reference sequence (a fresh watch after healing, filtered alike):
  ordered, gap-free, duplicate-free.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from pinnace.api import object_pb2, store_pb2, store_pb2_grpc
from services.store.raft import linearizability as lin
from tests.support.store import StoreCluster, start_store

NS = "chaos"
KIND = "lease"
OP_TIMEOUT = 3.0
DEFINITE_FAILURES = {
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.PERMISSION_DENIED,
}
FAULT_KINDS = ("kill9", "sigstop", "slow_fsync", "fsync_error")


@dataclass
class Report:
    """What one chaos run did and found."""

    seconds: float = 0.0
    faults: Counter[str] = field(default_factory=Counter)
    recover_seconds: list[float] = field(default_factory=list)
    recover_by_kind: dict[str, list[float]] = field(default_factory=dict)
    ops: Counter[str] = field(default_factory=Counter)
    unknown_ops: int = 0
    watch_events: int = 0
    watch_reconnects: int = 0
    violations: list[str] = field(default_factory=list)
    undetermined: list[str] = field(default_factory=list)  # registers whose check hit the search limit

    def summary(self) -> dict[str, Any]:
        rec = self.recover_seconds
        return {
            "seconds": round(self.seconds, 1),
            "faults": dict(self.faults),
            "operations_checked": sum(self.ops.values()),
            "operations": dict(self.ops),
            "unknown_outcome_ops": self.unknown_ops,
            "watch_events_checked": self.watch_events,
            "watch_reconnects": self.watch_reconnects,
            "violations": len(self.violations),
            "linearizability_undetermined": len(self.undetermined),
            "violation_details": self.violations[:10],
            "recover_seconds_median": round(statistics.median(rec), 3) if rec else None,
            "recover_seconds_max": round(max(rec), 3) if rec else None,
            "recover_seconds_by_kind": {
                k: {"median": round(statistics.median(v), 3), "max": round(max(v), 3)}
                for k, v in self.recover_by_kind.items()
                if v
            },
        }


def linearizable(ops: list[lin.Op], limit: int = 300_000) -> bool | None:
    """The checker's verdict on one register's history; None when the search limit was reached."""
    try:
        return lin.check(lin.resolve_unknown_register_ops(ops), lin.register_model, "init", limit=limit).ok
    except RuntimeError:
        return None


def lease(name: str, value: str, group: str, ns: str = NS) -> object_pb2.Object:
    o = object_pb2.Object()
    o.lease.metadata.name = name
    o.lease.metadata.namespace = ns
    o.lease.metadata.labels["group"] = group
    o.lease.spec.holder_identity = value
    return o


@contextlib.contextmanager
def env(name: str, value: str | None) -> Iterator[None]:
    """Set an environment variable for processes started inside the block."""
    old = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


class Chaos:
    """One run: a store cluster, the workload, the fault loop and the checks."""

    def __init__(
        self,
        cluster: StoreCluster,
        seconds: float,
        seed: int | None = None,
        registers: int = 32,
        register_clients: int = 4,
        ack_clients: int = 2,
        fault_kinds: tuple[str, ...] = FAULT_KINDS,
        fault_gap: tuple[float, float] = (1.0, 3.0),
        namespace: str = NS,
    ) -> None:
        self.c = cluster
        self.ns = namespace
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.registers = [f"reg-{i}" for i in range(registers)]
        self.register_clients = register_clients
        self.ack_clients = ack_clients
        self.fault_kinds = fault_kinds
        self.fault_gap = fault_gap
        self.report = Report()
        self.history: list[lin.Op] = []
        self.acked_creates: set[str] = set()
        self.attempted_creates: set[str] = set()
        self.acked_deletes: set[str] = set()
        self.unknown_deletes: set[str] = set()
        self.watch_seqs: dict[str, list[tuple[int, int, str]]] = {}
        self.stop = asyncio.Event()
        self.channels: list[grpc.aio.Channel] = []
        self.stubs: list[store_pb2_grpc.StoreStub] = []
        self.start_revision = 0
        self.dump_dir: Path | None = None

    # ------------------------------------------------------------------ plumbing

    def _open(self) -> None:
        opts = [("grpc.use_local_subchannel_pool", 1), ("grpc.max_reconnect_backoff_ms", 500)]
        for i in range(self.c.replicas):
            ch = grpc.aio.insecure_channel(self.c.endpoints[i], options=opts)
            self.channels.append(ch)
            self.stubs.append(store_pb2_grpc.StoreStub(ch))

    async def _close(self) -> None:
        for ch in self.channels:
            await ch.close()

    def _stub(self) -> store_pb2_grpc.StoreStub:
        return self.rng.choice(self.stubs)

    async def _retry(self, fn: Any, req: Any, timeout: float = 60.0) -> Any:
        """Setup/verification calls: retry on any replica until it works."""
        deadline = time.monotonic() + timeout
        while True:
            for s in self.stubs:
                try:
                    return await fn(s)(req, timeout=OP_TIMEOUT)
                except grpc.aio.AioRpcError as e:
                    if e.code() in DEFINITE_FAILURES or time.monotonic() > deadline:
                        raise
            await asyncio.sleep(0.1)

    # ------------------------------------------------------------------ workload

    async def setup(self) -> None:
        ns = object_pb2.Object()
        ns.namespace.metadata.name = self.ns
        await self._retry(lambda s: s.Create, store_pb2.CreateRequest(object=ns))
        for name in self.registers:
            await self._retry(lambda s: s.Create, store_pb2.CreateRequest(object=lease(name, "init", "reg", self.ns)))
        r = await self._retry(lambda s: s.List, store_pb2.ListRequest(kind=KIND, namespace=self.ns))
        self.start_revision = r.revision

    async def register_client(self, cid: int) -> None:
        n = 0
        while not self.stop.is_set():
            key = self.rng.choice(self.registers)
            n += 1
            value = f"c{cid}-{n}"
            roll = self.rng.random()
            if roll < 0.4:
                await self._read(cid, key)
            elif roll < 0.7:
                await self._write(cid, key, value)
            else:
                got = await self._read(cid, key)
                if got is not None:
                    await self._cas(cid, key, got, value)
            await asyncio.sleep(self.rng.uniform(0, 0.02))

    async def _read(self, cid: int, key: str) -> tuple[str, str] | None:
        t0 = time.monotonic()
        try:
            o = await self._stub().Get(store_pb2.GetRequest(kind=KIND, namespace=self.ns, name=key), timeout=OP_TIMEOUT)
        except grpc.aio.AioRpcError as e:
            self._missing(key, e, "Get")
            return None  # a failed read has no effect: not recorded
        v = o.lease.spec.holder_identity
        self.history.append(lin.Op(cid, t0, time.monotonic(), "read", key, None, v))
        self.report.ops["read"] += 1
        return v, o.lease.metadata.resource_version

    def _missing(self, key: str, e: grpc.aio.AioRpcError, what: str) -> None:
        """Registers always exist: NOT_FOUND (or any definite refusal) for one is a violation."""
        if e.code() in DEFINITE_FAILURES:
            self.report.violations.append(f"{what} of register {key}: {e.code().name}: {e.details()}")

    async def _write(self, cid: int, key: str, value: str) -> None:
        t0 = time.monotonic()
        try:
            await self._stub().Update(
                store_pb2.UpdateRequest(object=lease(key, value, "reg", self.ns)), timeout=OP_TIMEOUT
            )
            done: float | None = time.monotonic()
        except grpc.aio.AioRpcError as e:
            if e.code() in DEFINITE_FAILURES:
                self._missing(key, e, "Update")
                return
            done = None
            self.report.unknown_ops += 1
        self.history.append(lin.Op(cid, t0, done, "write", key, value, None))
        self.report.ops["write"] += 1

    async def _cas(self, cid: int, key: str, got: tuple[str, str], value: str) -> None:
        expected, rv = got
        obj = lease(key, value, "reg", self.ns)
        obj.lease.metadata.resource_version = rv
        t0 = time.monotonic()
        try:
            await self._stub().Update(store_pb2.UpdateRequest(object=obj), timeout=OP_TIMEOUT)
            done: float | None = time.monotonic()
            ok: bool | None = True
        except grpc.aio.AioRpcError as e:
            if e.code() == grpc.StatusCode.ABORTED:
                done, ok = time.monotonic(), False
            elif e.code() in DEFINITE_FAILURES:
                self._missing(key, e, "CAS")
                return
            else:
                done, ok = None, None
                self.report.unknown_ops += 1
        self.history.append(lin.Op(cid, t0, done, "cas", key, (expected, value), ok))
        self.report.ops["cas"] += 1

    async def ack_client(self, cid: int) -> None:
        n = 0
        mine: list[str] = []
        while not self.stop.is_set():
            if mine and self.rng.random() < 0.25:
                name = mine.pop(self.rng.randrange(len(mine)))
                req = store_pb2.DeleteRequest(kind=KIND, namespace=self.ns, name=name)
                try:
                    await self._stub().Delete(req, timeout=OP_TIMEOUT)
                    self.acked_deletes.add(name)
                except grpc.aio.AioRpcError as e:
                    if e.code() != grpc.StatusCode.NOT_FOUND:
                        self.unknown_deletes.add(name)
                self.report.ops["delete"] += 1
            elif self.rng.random() < 0.3:  # several creates in one Batch call: they replicate packed
                numbers = range(n + 1, n + self.rng.randint(2, 4) + 1)
                n = numbers[-1]
                names = [f"ack-{cid}-{m}" for m in numbers]
                self.attempted_creates.update(names)
                batch = store_pb2.BatchRequest()
                for m, name in zip(numbers, names, strict=True):
                    batch.ops.add().create.object.CopyFrom(lease(name, name, "a" if m % 2 else "b", self.ns))
                try:
                    resp = await self._stub().Batch(batch, timeout=OP_TIMEOUT)
                    for name, res in zip(names, resp.results, strict=True):
                        if res.code == 0:
                            self.acked_creates.add(name)
                            mine.append(name)
                except grpc.aio.AioRpcError:
                    pass
                self.report.ops["create"] += len(names)
            else:
                n += 1
                name = f"ack-{cid}-{n}"
                group = "a" if n % 2 else "b"
                self.attempted_creates.add(name)
                try:
                    await self._stub().Create(
                        store_pb2.CreateRequest(object=lease(name, name, group, self.ns)), timeout=OP_TIMEOUT
                    )
                    self.acked_creates.add(name)
                    mine.append(name)
                except grpc.aio.AioRpcError:
                    pass
                self.report.ops["create"] += 1
            await asyncio.sleep(self.rng.uniform(0, 0.03))

    async def watcher(self, wid: str, selector: str, until: asyncio.Event, end_rev: list[int]) -> None:
        """Watch from start_revision; on a broken stream reopen elsewhere from the last revision."""
        seq = self.watch_seqs.setdefault(wid, [])
        last = self.start_revision
        replica = self.rng.randrange(self.c.replicas)
        while True:
            if until.is_set() and end_rev and last >= end_rev[0]:
                return
            req = store_pb2.WatchRequest(kind=KIND, namespace=self.ns, from_revision=last, label_selector=selector)
            call = self.stubs[replica].Watch(req)
            try:
                while True:
                    try:
                        ev = await asyncio.wait_for(call.read(), 5.0)
                    except TimeoutError:
                        break  # silent (paused replica?): move on
                    if ev is grpc.aio.EOF:
                        break
                    if ev.type == store_pb2.WatchEvent.BOOKMARK:
                        continue
                    o = ev.object
                    name = o.lease.metadata.name
                    seq.append((ev.revision, int(ev.type), name))
                    last = max(last, ev.revision)
                    if until.is_set() and end_rev and last >= end_rev[0]:
                        return
            except grpc.aio.AioRpcError:
                pass
            finally:
                call.cancel()
            self.report.watch_reconnects += 1
            replica = (replica + 1) % self.c.replicas
            await asyncio.sleep(0.05)

    # ------------------------------------------------------------------ faults

    async def _probe(self, i: int, deadline: float) -> float | None:
        """Seconds until replica i serves a linearizable read and accepts a write (None: never)."""
        t0 = time.monotonic()
        stub = self.stubs[i]
        while time.monotonic() < deadline:
            try:
                await stub.Get(store_pb2.GetRequest(kind="namespace", name=self.ns), timeout=1.0)
                probe = lease(f"probe-{i}", f"p-{time.monotonic_ns()}", "probe", self.ns)
                try:
                    await stub.Update(store_pb2.UpdateRequest(object=probe), timeout=1.0)
                except grpc.aio.AioRpcError as e:
                    if e.code() != grpc.StatusCode.NOT_FOUND:
                        raise
                    await stub.Create(store_pb2.CreateRequest(object=probe), timeout=1.0)
                return time.monotonic() - t0
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.05)
        return None

    async def _restart(self, i: int, failpoints: str | None = None) -> None:
        def go() -> None:
            with env("PINNACE_RAFT_FAILPOINTS", failpoints):
                self.c.start_process(i)

        if self.c.alive(i):
            await asyncio.to_thread(self.c.terminate, i)
        await asyncio.to_thread(go)

    async def _wait_healthy(self, i: int) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError):
            await asyncio.to_thread(self.c.wait_healthy, [i], 30.0)

    async def _target(self) -> int:
        if self.rng.random() < 0.5:
            with contextlib.suppress(Exception):
                return await asyncio.to_thread(self.c.leader, 2.0)
        return self.rng.randrange(self.c.replicas)

    async def inject(self, kind: str) -> None:
        i = await self._target()
        heal_at: float
        if kind == "kill9":
            self.c.kill(i)
            await asyncio.sleep(self.rng.uniform(0.5, 2.0))
            heal_at = time.monotonic()
            await self._restart(i)
        elif kind == "sigstop":
            self.c.pause(i)
            await asyncio.sleep(self.rng.uniform(1.5, 3.5))
            heal_at = time.monotonic()
            self.c.resume(i)
        elif kind == "slow_fsync":
            await self._restart(i, f"before_fsync=sleep({self.rng.choice([0.05, 0.2, 0.5])})")
            await self._wait_healthy(i)
            await asyncio.sleep(self.rng.uniform(2.0, 4.0))
            heal_at = time.monotonic()
            await self._restart(i)
        elif kind == "partition":  # needs a NetnsStoreCluster (tests/robustness/netchaos.py)
            partition = getattr(self.c, "partition", None)
            if partition is None:
                raise ValueError("the partition fault needs replicas in network namespaces (netchaos)")
            await asyncio.to_thread(partition, i)
            await asyncio.sleep(self.rng.uniform(2.0, 4.0))
            heal_at = time.monotonic()
            await asyncio.to_thread(self.c.heal, i)  # type: ignore[attr-defined]
        elif kind == "fsync_error":
            await self._restart(i, "after_fsync=error")
            deadline = time.monotonic() + 10
            while self.c.alive(i) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            if self.c.alive(i):
                self.report.violations.append(f"replica {i + 1} kept running after an injected fsync error")
            heal_at = time.monotonic()
            self.c.kill(i)
            await self._restart(i)
        else:
            raise ValueError(kind)
        self.report.faults[kind] += 1
        took = await self._probe(i, time.monotonic() + 60)
        if took is None:
            self.report.violations.append(f"replica {i + 1} did not recover within 60 s after {kind}")
            return
        rec = time.monotonic() - heal_at
        self.report.recover_seconds.append(rec)
        self.report.recover_by_kind.setdefault(kind, []).append(rec)

    async def fault_loop(self, until: float) -> None:
        k = 0
        # every kind once, even past `until` (a slow recovery must not leave a kind untested), then
        # random kinds until `until`
        while time.monotonic() < until or k < len(self.fault_kinds):
            await asyncio.sleep(self.rng.uniform(*self.fault_gap))
            if time.monotonic() >= until and k >= len(self.fault_kinds):
                break
            kind = self.fault_kinds[k % len(self.fault_kinds)] if k < len(self.fault_kinds) else None
            await self.inject(kind or self.rng.choice(self.fault_kinds))
            k += 1

    async def heal_all(self) -> None:
        for i in range(self.c.replicas):
            self.c.resume(i)
            if not self.c.alive(i):
                await self._restart(i)
        for i in range(self.c.replicas):
            await self._wait_healthy(i)

    # ------------------------------------------------------------------ checks

    async def check(self, end_rev: int) -> None:
        v = self.report.violations
        # 1. linearizable register history (each register on its own; a bounded search)
        for key in self.registers:
            ops = [o for o in self.history if o.key == key]
            verdict = await asyncio.to_thread(linearizable, ops)
            if verdict is True:
                continue
            if verdict is None:
                self.report.undetermined.append(key)
                continue
            # diagnosis: is it explained by the refused compare-and-swaps alone?
            no_failed_cas = [o for o in ops if not (o.kind == "cas" and o.complete is not None and not o.output)]
            hint = ""
            if await asyncio.to_thread(linearizable, no_failed_cas):
                hint = " (linearizable without its refused CAS ops: a CAS was refused that should have succeeded)"
            v.append(f"register {key}: history of {len(ops)} ops not linearizable{hint}")
            if self.dump_dir is not None:
                import json

                (self.dump_dir / f"history-{key}.json").write_text(json.dumps([o.__dict__ for o in ops], default=list))
        # 2. acknowledged writes present, nothing invented; 3. replicas agree
        contents: list[tuple[int, dict[str, str]]] = []
        for i in range(self.c.replicas):
            deadline = time.monotonic() + 30
            while True:
                try:
                    r = await self.stubs[i].List(
                        store_pb2.ListRequest(kind=KIND, namespace=self.ns, revision=end_rev), timeout=OP_TIMEOUT
                    )
                    break
                except grpc.aio.AioRpcError as e:
                    if time.monotonic() > deadline:
                        v.append(f"replica {i + 1} cannot list at revision {end_rev}: {e.code().name} {e.details()}")
                        r = None
                        break
                    await asyncio.sleep(0.2)
            if r is None:
                continue
            items = {it.lease.metadata.name: it.lease.spec.holder_identity for it in r.items}
            contents.append((i, items))
        if contents:
            base_i, base = contents[0]
            for i, items in contents[1:]:
                if items != base:
                    diff = set(items.items()) ^ set(base.items())
                    v.append(f"replicas {base_i + 1} and {i + 1} differ at revision {end_rev}: {sorted(diff)[:5]}")
            present = {n for n in base if n.startswith("ack-")}
            for name in sorted(self.acked_creates - self.acked_deletes - self.unknown_deletes - present):
                v.append(f"acknowledged create of {name} is lost")
            for name in sorted(present & self.acked_deletes):
                v.append(f"acknowledged delete of {name} did not happen")
            for name in sorted(present - self.attempted_creates):
                v.append(f"{name} is present but was never created")
        # 4. watchers: ordered, gap-free, duplicate-free = equal to a fresh reference watch
        ref = await self._reference(end_rev)
        if ref is None:
            v.append("could not read the reference event sequence")
            return
        for wid, seq in self.watch_seqs.items():
            self.report.watch_events += len(seq)
            want = [e for e in ref if self._matches(wid, e)]
            got = [e for e in seq if e[0] <= end_rev]
            revs = [e[0] for e in got]
            if revs != sorted(set(revs)):
                v.append(f"watcher {wid}: revisions not strictly increasing (duplicates or reordering)")
            if got != want:
                missing = sorted(set(want) - set(got))[:3]
                extra = sorted(set(got) - set(want))[:3]
                v.append(f"watcher {wid}: {len(got)} events, expected {len(want)}; missing {missing} extra {extra}")

    def _matches(self, wid: str, e: tuple[int, int, str]) -> bool:
        if wid == "all":
            return True
        name = e[2]
        return name.startswith("ack-") and int(name.rsplit("-", 1)[1]) % 2 == 1  # group=a

    async def _reference(self, end_rev: int) -> list[tuple[int, int, str]] | None:
        leader = await asyncio.to_thread(self.c.leader, 30.0)
        call = self.stubs[leader].Watch(
            store_pb2.WatchRequest(kind=KIND, namespace=self.ns, from_revision=self.start_revision)
        )
        out: list[tuple[int, int, str]] = []
        try:
            while True:
                ev = await asyncio.wait_for(call.read(), 10.0)
                if ev is grpc.aio.EOF:
                    return None
                if ev.type == store_pb2.WatchEvent.BOOKMARK:
                    continue
                if ev.revision > end_rev:
                    return out
                out.append((ev.revision, int(ev.type), ev.object.lease.metadata.name))
                if ev.revision == end_rev:
                    return out
        except (TimeoutError, grpc.aio.AioRpcError):
            return None
        finally:
            call.cancel()

    # ------------------------------------------------------------------ the run

    async def run(self) -> Report:
        t0 = time.monotonic()
        self._open()
        try:
            await self.setup()
            watch_until = asyncio.Event()
            end_rev: list[int] = []
            watchers = [
                asyncio.create_task(self.watcher("all", "", watch_until, end_rev)),
                asyncio.create_task(self.watcher("group-a", "group=a", watch_until, end_rev)),
            ]
            workers = [asyncio.create_task(self.register_client(i)) for i in range(self.register_clients)]
            workers += [asyncio.create_task(self.ack_client(100 + i)) for i in range(self.ack_clients)]
            try:
                await self.fault_loop(time.monotonic() + self.seconds)
                self.stop.set()
                await asyncio.gather(*workers)
                await self.heal_all()
                # a last write marks the end; every watcher must get there
                end = await self._retry(
                    lambda s: s.Create, store_pb2.CreateRequest(object=lease("ack-999-1", "end", "a", self.ns))
                )
                self.attempted_creates.add("ack-999-1")
                self.acked_creates.add("ack-999-1")
                end_rev.append(int(end.lease.metadata.resource_version))
                watch_until.set()
                _done, pending = await asyncio.wait(watchers, timeout=60)
                for t in pending:
                    self.report.violations.append(f"a watcher did not reach revision {end_rev[0]} within 60 s")
                    t.cancel()
                await self.check(end_rev[0])
            finally:
                self.stop.set()
                for t in [*workers, *watchers]:
                    t.cancel()
                await asyncio.gather(*workers, *watchers, return_exceptions=True)
        finally:
            await self._close()
        self.report.seconds = time.monotonic() - t0
        return self.report


def run_chaos(base: Path, seconds: float, seed: int | None = None, **kw: Any) -> Report:
    """Start a 3-replica store under base, run the chaos for `seconds`, stop it; returns the Report."""
    cluster = start_store(base, replicas=3)
    try:
        chaos = Chaos(cluster, seconds, seed, **kw)
        chaos.dump_dir = base
        return asyncio.run(chaos.run())
    finally:
        cluster.stop()
