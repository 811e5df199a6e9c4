"""Store benchmark: prints one JSON line.

Keys: writes_per_s (64 concurrent clients, 1 KiB objects), seq_create_p50_ms, get_p50_ms
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
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pinnace.api import object_pb2, store_pb2, store_pb2_grpc
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


async def _write_load(endpoint: str, seconds: float, concurrency: int, ns: str, tag: str) -> tuple[int, float]:
    channels = [grpc.aio.insecure_channel(endpoint, options=OPTS) for _ in range(max(1, concurrency // 16))]
    stubs = [store_pb2_grpc.StoreStub(c) for c in channels]
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        stub = stubs[w % len(stubs)]
        i = 0
        while time.perf_counter() < stop_at:
            await stub.Create(store_pb2.CreateRequest(object=pod(f"{tag}{w}-{i}", ns)))
            i += 1
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - t0
    for c in channels:
        await c.close()
    return done, elapsed


def _write_proc(endpoint: str, seconds: float, concurrency: int, ns: str, tag: str, q: Any) -> None:
    q.put(asyncio.run(_write_load(endpoint, seconds, concurrency, ns, tag)))


async def bench_writes(
    endpoints: list[str], seconds: float, concurrency: int, ns: str, procs: int = 1
) -> tuple[float, int]:
    """Creates/s with `concurrency` clients in total, spread over `procs` client processes."""
    async with grpc.aio.insecure_channel(endpoints[0], options=OPTS) as ch:
        await ensure_ns(store_pb2_grpc.StoreStub(ch), ns)
    if procs <= 1:
        n, elapsed = await _write_load(endpoints[0], seconds, concurrency, ns, "w")
        return n / elapsed, n
    ctx = mp.get_context("spawn")
    q: Any = ctx.Queue()
    per = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
    ps = [ctx.Process(target=_write_proc, args=(endpoints[0], seconds, k, ns, f"w{i}-", q)) for i, k in enumerate(per)]
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


def _watch_proc(endpoint: str, ns: str, watchers: int, expect: int, start_rev: int, q: Any) -> None:
    """Child process: `watchers` raw watch streams; reports arrival times of every event."""

    async def run() -> None:
        channels = [grpc.aio.insecure_channel(endpoint, options=OPTS) for _ in range(max(1, watchers // 100))]
        arrivals: list[list[float]] = []
        ready = 0

        async def one(k: int) -> None:
            nonlocal ready
            call = channels[k % len(channels)].unary_stream(
                "/pinnace.v1.Store/Watch",
                request_serializer=store_pb2.WatchRequest.SerializeToString,
                response_deserializer=None,
            )(store_pb2.WatchRequest(kind="pod", namespace=ns, from_revision=start_rev))
            times: list[float] = []
            arrivals.append(times)
            ready += 1
            async for _ in call:
                times.append(time.time())
                if len(times) >= expect:
                    call.cancel()
                    break

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


async def bench_watch(endpoints: list[str], watchers: int, rate: int, seconds: float, procs: int) -> float:
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
        for _ in ps:
            await asyncio.get_running_loop().run_in_executor(None, q.get)
        sent: list[float] = []
        t0 = time.perf_counter()
        for i in range(n):
            target = t0 + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent.append(time.time())
            await stub.Create(store_pb2.CreateRequest(object=pod(f"e{i}", ns)))
        lat: list[float] = []
        for _ in ps:
            arrivals = await asyncio.get_running_loop().run_in_executor(None, q.get)
            for times in arrivals:
                for k, t in enumerate(times):
                    lat.append((t - sent[k]) * 1000)
                missing = n - len(times)
                lat.extend([float("inf")] * missing)
        for p in ps:
            p.join(10)
        return pct(lat, 99)


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
    try:
        endpoints = cluster.endpoints
        if replicas > 1:
            leader = cluster.leader()
            endpoints = [endpoints[leader]] + [e for i, e in enumerate(endpoints) if i != leader]
        q = args.quick
        wps, nw = await bench_writes(endpoints, 3.0 if q else 10.0, 64, "bench-w", args.write_procs)
        seq, get = await bench_seq(endpoints, 200 if q else 1000, "bench-s")
        watch_n = args.watchers or (100 if q else 1000)
        watch_p99 = await bench_watch(
            endpoints, watch_n, args.watch_rate or (200 if q else 1000), 3.0 if q else 5.0, args.watch_procs
        )
        list_total = 10_000 if q else 100_000
        list_s, list_count = await bench_list(endpoints, list_total, "bench-l")
        rss = rss_mib(cluster)
        fo = await bench_failover(cluster, 2 if q else 5)
        return {
            "writes_per_s": round(wps, 1),
            "seq_create_p50_ms": round(seq, 3),
            "get_p50_ms": round(get, 3),
            "watch_p99_ms": round(watch_p99, 1),
            "list_100k_s": round(list_s * 100_000 / max(1, list_count), 3),
            "rss_mib": rss,
            "failover_s": fo,
            "replicas": replicas,
            "state_sync": args.state_sync or "full",
            "quick": q,
            "writes_total": nw,
            "write_client_procs": args.write_procs,
            "watchers": watch_n,
            "watch_rate": args.watch_rate or (200 if q else 1000),
            "list_objects": list_count,
            "list_s": round(list_s, 3),
        }
    finally:
        cluster.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--replicas", type=int, default=0, help="0 = 3 when raft is wired, else 1")
    p.add_argument("--watchers", type=int, default=0)
    p.add_argument("--watch-rate", type=int, default=0)
    p.add_argument("--watch-procs", type=int, default=2)
    p.add_argument("--write-procs", type=int, default=2, help="client processes sharing the 64 writers")
    p.add_argument("--state-sync", default="", help="pass --state-sync to the replicas (full or normal)")
    args = p.parse_args()
    os.environ.setdefault("PINNACE_LOG_LEVEL", "warning")
    print(json.dumps(asyncio.run(main_async(args))), flush=True)


if __name__ == "__main__":
    main()
