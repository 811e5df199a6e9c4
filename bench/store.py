"""Store benchmark: prints one JSON line.

Keys: writes_per_s (64 concurrent writers in 2 client processes, 1 KiB objects, through the SDK,
whose concurrent writes share Store.Batch calls; writes_per_s_unary: the same with one Create call
per write), seq_create_p50_ms, get_p50_ms
(linearizable), watch_p99_ms (N watchers each receiving every event while writes go in),
list_100k_s (List of every object, scaled to 100k when fewer were loaded), rss_mib (largest
replica RSS after loading), failover_s (kill -9 the leader until writes succeed; needs raft),
plus replicas and the sizes used. `--quick` runs a smaller version in under a minute.

    python bench/store.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pinnace.api import object_pb2, store_pb2, store_pb2_grpc
from pinnace.client import AsyncClient
from tests.support.store import StoreCluster, start_store

OPTS = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
PAD = "x" * 900


def pod(name: str, ns: str) -> object_pb2.Object:
    o = object_pb2.Object()
    m = o.pod.metadata
    m.name = name
    m.namespace = ns
    m.labels["app"] = "bench"
    m.annotations["pad"] = PAD
    c = o.pod.spec.containers.add()
    c.name = "c"
    c.image = "busybox:1.36"
    return o


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100.0 * len(s)))]


async def ensure_ns(stub: store_pb2_grpc.StoreStub, name: str) -> None:
    o = object_pb2.Object()
    o.namespace.metadata.name = name
    try:
        await stub.Create(store_pb2.CreateRequest(object=o))
    except grpc.aio.AioRpcError as e:
        if e.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise


async def _write_load(
    endpoint: str, seconds: float, concurrency: int, ns: str, tag: str, unary: bool = False
) -> tuple[int, float]:
    """`concurrency` writers creating pods for `seconds`: through one SDK client (its writes share
    Batch calls), or with `unary` one raw Create call per write."""
    channels = [grpc.aio.insecure_channel(endpoint, options=OPTS) for _ in range(max(1, concurrency // 16))]
    stubs = [store_pb2_grpc.StoreStub(c) for c in channels]
    client = AsyncClient([endpoint])
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        stub = stubs[w % len(stubs)]
        i = 0
        while time.perf_counter() < stop_at:
            if unary:
                await stub.Create(store_pb2.CreateRequest(object=pod(f"{tag}{w}-{i}", ns)))
            else:
                await client.create(pod(f"{tag}{w}-{i}", ns))
            i += 1
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - t0
    for c in channels:
        await c.close()
    await client.close()
    return done, elapsed


def _write_proc(endpoint: str, seconds: float, concurrency: int, ns: str, tag: str, unary: bool, q: Any) -> None:
    q.put(asyncio.run(_write_load(endpoint, seconds, concurrency, ns, tag, unary)))


async def bench_writes(
    endpoints: list[str], seconds: float, concurrency: int, ns: str, procs: int = 1, unary: bool = False
) -> tuple[float, int]:
    """Creates/s with `concurrency` clients in total, spread over `procs` client processes."""
    async with grpc.aio.insecure_channel(endpoints[0], options=OPTS) as ch:
        await ensure_ns(store_pb2_grpc.StoreStub(ch), ns)
    tag = "u" if unary else "w"
    if procs <= 1:
        n, elapsed = await _write_load(endpoints[0], seconds, concurrency, ns, tag, unary)
        return n / elapsed, n
    ctx = mp.get_context("spawn")
    q: Any = ctx.Queue()
    per = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
    ps = [
        ctx.Process(target=_write_proc, args=(endpoints[0], seconds, k, ns, f"{tag}{i}-", unary, q))
        for i, k in enumerate(per)
    ]
    for p in ps:
        p.start()
    loop = asyncio.get_running_loop()
    total, rate = 0, 0.0
    for _ in ps:
        n, elapsed = await loop.run_in_executor(None, q.get)
        total += n
        rate += n / elapsed  # each process's own rate over its own window (they overlap)
    for p in ps:
        p.join(10)
    return rate, total


async def bench_seq(endpoints: list[str], n: int, ns: str) -> tuple[float, float]:
    async with grpc.aio.insecure_channel(endpoints[0], options=OPTS) as ch:
        stub = store_pb2_grpc.StoreStub(ch)
        await ensure_ns(stub, ns)
        creates: list[float] = []
        for i in range(n):
            t = time.perf_counter()
            await stub.Create(store_pb2.CreateRequest(object=pod(f"s{i}", ns)))
            creates.append((time.perf_counter() - t) * 1000)
        gets: list[float] = []
        for i in range(n * 2):
            t = time.perf_counter()
            await stub.Get(store_pb2.GetRequest(kind="pod", namespace=ns, name=f"s{i % n}"))
            gets.append((time.perf_counter() - t) * 1000)
        return statistics.median(creates), statistics.median(gets)


def count_events(batch: bytes) -> int:
    """Events in a serialized WatchEventBatch without parsing them: each is 0x0a, a varint length, the event."""
    n = pos = 0
    end = len(batch)
    while pos < end:
        b = batch[pos + 1]
        pos += 2
        length = b & 0x7F
        shift = 7
        while b & 0x80:
            b = batch[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            shift += 7
        pos += length
        n += 1
    return n


class EventCounter:
    """Counts the events of this benchmark's WatchEventBatches at C speed: each event is the create of a
    pod in the benchmark's namespace, whose name (length-prefixed) it carries exactly once. The first
    batches are checked against count_events; on any difference every batch is walked from then on."""

    def __init__(self, ns: str, checks: int = 100) -> None:
        self.marker = bytes((len(ns),)) + ns.encode()
        self.checks = checks
        self.exact = len(ns) >= 0x80

    def __call__(self, batch: bytes) -> int:
        if self.exact:
            return count_events(batch)
        n = batch.count(self.marker)
        if self.checks > 0:
            self.checks -= 1
            exact = count_events(batch)
            if exact != n:
                self.exact = True
                return exact
        return n


def _watch_proc(endpoint: str, ns: str, watchers: int, expect: int, start_rev: int, q: Any) -> None:
    """Child process: `watchers` raw WatchBatches streams; reports, per watcher, the arrival time of
    every event and the number of messages they came in."""

    async def run() -> None:
        channels = [grpc.aio.insecure_channel(endpoint, options=OPTS) for _ in range(max(1, watchers // 100))]
        arrivals: list[tuple[list[float], int]] = []
        ready = 0
        count = EventCounter(ns)

        async def one(k: int) -> None:
            nonlocal ready
            call = channels[k % len(channels)].unary_stream(
                "/pinnace.v1.Store/WatchBatches",
                request_serializer=store_pb2.WatchRequest.SerializeToString,
                response_deserializer=None,
            )(store_pb2.WatchRequest(kind="pod", namespace=ns, from_revision=start_rev))
            times: list[float] = []
            messages = 0
            ready += 1
            try:
                async for data in call:
                    now = time.time()
                    times += [now] * count(data)
                    messages += 1
                    if len(times) >= expect:
                        call.cancel()
                        break
            finally:
                arrivals.append((times, messages))

        tasks = [asyncio.create_task(one(k)) for k in range(watchers)]
        while ready < watchers:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        q.put("ready")
        try:
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=120)
        except TimeoutError:
            pass
        q.put(arrivals)
        for c in channels:
            await c.close()

    asyncio.run(run())


async def _paced_creates(client: AsyncClient, ns: str, n: int, rate: int, pad: int) -> list[float]:
    """n creates sent at `rate` per second, each on schedule whatever the latency of the others (so a
    slow create cannot lower the rate; the SDK coalesces those in flight into Batch calls); their send
    times (time.time()) in revision order."""

    async def create(i: int, sent_at: float) -> tuple[int, float]:
        o = pod(f"e{i}", ns)
        if pad >= 0:
            o.pod.metadata.annotations["pad"] = "x" * pad
        res = await client.create(o)
        return int(res.pod.metadata.resource_version), sent_at

    tasks = []
    t0 = time.perf_counter()
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(create(i, time.time())))
    done = await asyncio.gather(*tasks)
    return [sent_at for _, sent_at in sorted(done)]


async def run_watch(
    endpoints: list[str], watchers: int, rate: int, seconds: float, procs: int, pad: int = -1
) -> dict[str, float]:
    """`watchers` WatchBatches streams (spread over the replicas) each receiving every one of
    rate*seconds creates; delivery latency figures (ms) and the messages they came in.

    pad: size of the pods' padding annotation (-1 = the usual 1 KiB pods)."""
    ns = f"bench-watch-{time.time_ns() % 10**9}"
    async with grpc.aio.insecure_channel(endpoints[0], options=OPTS) as ch:
        stub = store_pb2_grpc.StoreStub(ch)
        await ensure_ns(stub, ns)
        start_rev = (await stub.List(store_pb2.ListRequest(kind="pod", namespace=ns, limit=1))).revision
        n = int(rate * seconds)
        ctx = mp.get_context("spawn")
        q: Any = ctx.Queue()
        per = [watchers // procs + (1 if i < watchers % procs else 0) for i in range(procs)]
        ps = [
            ctx.Process(target=_watch_proc, args=(endpoints[i % len(endpoints)], ns, k, n, start_rev, q))
            for i, k in enumerate(per)
        ]
        for p in ps:
            p.start()
        loop = asyncio.get_running_loop()
        for _ in ps:
            await loop.run_in_executor(None, q.get)
        async with AsyncClient([endpoints[0]]) as client:
            sent = await _paced_creates(client, ns, n, rate, pad)
        lat: list[float] = []
        messages = 0
        for _ in ps:
            for times, msgs in await loop.run_in_executor(None, q.get):
                lat += [(t - s) * 1000 for t, s in zip(times, sent, strict=False)]
                lat += [float("inf")] * (n - len(times))
                messages += msgs
        for p in ps:
            p.join(10)
    return {
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "max_ms": max(lat, default=float("nan")),
        "write_rate": n / max(1e-9, sent[-1] - sent[0]) if n > 1 else float("nan"),
        "missing": sum(1 for x in lat if x == float("inf")),
        "events_per_message": len(lat) / max(1, messages),
    }


async def bench_watch(endpoints: list[str], watchers: int, rate: int, seconds: float, procs: int) -> float:
    """p99 watch delivery latency (ms); see run_watch."""
    return (await run_watch(endpoints, watchers, rate, seconds, procs))["p99_ms"]


async def bench_list(endpoints: list[str], total: int, ns: str) -> tuple[float, int]:
    async with grpc.aio.insecure_channel(endpoints[0], options=OPTS) as ch:
        stub = store_pb2_grpc.StoreStub(ch)
        await ensure_ns(stub, ns)
        have = len((await stub.List(store_pb2.ListRequest(kind="pod"))).items)
        sem = asyncio.Semaphore(64)

        async def mk(i: int) -> None:
            async with sem:
                await stub.Create(store_pb2.CreateRequest(object=pod(f"l{i}", ns)))

        if have < total:
            await asyncio.gather(*(mk(i) for i in range(total - have)))
        best = float("inf")
        count = 0
        for _ in range(2):
            t = time.perf_counter()
            r = await stub.List(store_pb2.ListRequest(kind="pod"))
            best = min(best, time.perf_counter() - t)
            count = len(r.items)
        return best, count


def rss_mib(cluster: StoreCluster) -> float:
    best = 0.0
    for i in range(cluster.replicas):
        pid = cluster.pid(i)
        if not pid:
            continue
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                best = max(best, int(line.split()[1]) / 1024)
    return round(best, 1)


async def bench_failover(cluster: StoreCluster, trials: int) -> float | None:
    if cluster.replicas < 3:
        return None
    results = []
    for _ in range(trials):
        leader = cluster.leader()
        others = [cluster.endpoints[i] for i in range(cluster.replicas) if i != leader]
        cluster.kill(leader)
        t0 = time.perf_counter()
        ok = False
        k = 0
        while not ok and time.perf_counter() - t0 < 30:
            for ep in others:
                try:
                    async with grpc.aio.insecure_channel(ep) as ch:
                        await store_pb2_grpc.StoreStub(ch).Create(
                            store_pb2.CreateRequest(object=pod(f"f{time.time_ns()}-{k}", "default")), timeout=0.5
                        )
                    ok = True
                    break
                except grpc.aio.AioRpcError:
                    k += 1
                    await asyncio.sleep(0.02)
        results.append(time.perf_counter() - t0)
        cluster.restart(leader)
    return round(statistics.median(results), 3)


def detect_replicas() -> int:
    """3 when raft is wired into the store (the factory can build a RaftReplicator), else 1."""
    import inspect

    from services.store import replicator_factory

    return 3 if "RaftReplicator" in inspect.getsource(replicator_factory) else 1


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="pinnace-bench-"))
    replicas = args.replicas or detect_replicas()
    flags = {"state_sync": args.state_sync} if args.state_sync else {}
    cluster = start_store(base / "run", replicas=replicas, **flags)
    q = args.quick
    out: dict[str, Any] = {}
    try:
        endpoints = cluster.endpoints
        if replicas > 1:
            leader = cluster.leader()
            endpoints = [endpoints[leader]] + [e for i, e in enumerate(endpoints) if i != leader]
        if args.only != "watch":
            wps, nw = await bench_writes(endpoints, 3.0 if q else 10.0, 64, "bench-w", args.write_procs)
            # the same load with one unary Create call per write (no coalescing), for comparison
            wps_unary, _ = await bench_writes(endpoints, 2.0 if q else 5.0, 64, "bench-u", args.write_procs, True)
            seq, get = await bench_seq(endpoints, 200 if q else 1000, "bench-s")
            out.update(
                writes_per_s=round(wps, 1),
                writes_per_s_unary=round(wps_unary, 1),
                seq_create_p50_ms=round(seq, 3),
                get_p50_ms=round(get, 3),
                writes_total=nw,
            )
        watchers = args.watchers or (100 if q else 1000)
        rate = args.watch_rate or (200 if q else 1000)
        w = await run_watch(endpoints, watchers, rate, 3.0 if q else 5.0, args.watch_procs, args.watch_pad)
        out.update(
            watch_p99_ms=round(w["p99_ms"], 1),
            watch_p50_ms=round(w["p50_ms"], 1),
            watch_max_ms=round(w["max_ms"], 1),
            watch_missing=int(w["missing"]),
            watch_events_per_message=round(w["events_per_message"], 1),
            watch_write_rate=round(w["write_rate"], 1),
        )
        if args.only != "watch":
            list_total = 10_000 if q else 100_000
            list_s, list_count = await bench_list(endpoints, list_total, "bench-l")
            out.update(list_100k_s=round(list_s * 100_000 / max(1, list_count), 3), list_objects=list_count)
        out["rss_mib"] = rss_mib(cluster)
        if args.only != "watch":
            out["failover_s"] = await bench_failover(cluster, 2 if q else 5)
        out.update(
            replicas=replicas,
            state_sync=args.state_sync or "normal",
            quick=q,
            write_client_procs=args.write_procs,
            watchers=watchers,
            watch_rate=rate,
            watch_pad=args.watch_pad,
        )
        return out
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--replicas", type=int, default=0, help="0 = 3 when raft is wired, else 1")
    p.add_argument("--watchers", type=int, default=0)
    p.add_argument("--watch-rate", type=int, default=0)
    p.add_argument("--watch-procs", type=int, default=2)
    p.add_argument("--write-procs", type=int, default=2, help="client processes sharing the 64 writers")
    p.add_argument("--state-sync", default="", help="pass --state-sync to the replicas (full or normal)")
    p.add_argument("--only", choices=["watch"], help="run only this part (prints its keys, plus details)")
    p.add_argument(
        "--watch-pad", type=int, default=-1, help="the watched pods' padding bytes (-1 = the usual 1 KiB pods)"
    )
    args = p.parse_args()
    os.environ.setdefault("PINNACE_LOG_LEVEL", "warning")
    print(json.dumps(asyncio.run(main_async(args))), flush=True)


if __name__ == "__main__":
    main()
