"""Benchmark: one Informer over many Pods. Prints one JSON line.

    python bench/informer.py            # 100,000 pods, 50,000 events
    python bench/informer.py --quick    # 10,000 pods, 10,000 events (well under a minute)
    python bench/informer.py --store 127.0.0.1:7000   # against a real store (it creates the pods)

Figures: initial_sync_s (start() until wait_synced(): paged List + decode + index + on_add
handlers; initial_sync_cpu_s is this process's CPU time for it),
events_per_s (steady state: MODIFIED events applied to the cache, indexes updated and
handlers run, which enqueue keys in a WorkQueue; end to end, so it includes the store's sending;
events_per_cpu_s is the same per CPU-second of this process, the informer's own cost), rss_mib (this
process after the run; the store
runs in another process). By default the store is the SDK's in-memory FakeStore in a child
process, so the figures are the informer's, not the store's write path: the events are put into
its history first and the informer's watch is broken, so it resumes and takes the backlog as fast
as it can (timed from the first event to the last).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pinnace.api import cluster_pb2, pod_pb2
from pinnace.client import AsyncClient, Informer, WorkQueue, errors


def make_pod(i: int) -> pod_pb2.Pod:
    p = pod_pb2.Pod()
    p.metadata.name = f"pod-{i:06d}"
    p.metadata.namespace = f"ns-{i % 50}"
    p.metadata.labels.update({"app": f"app-{i % 500}", "tier": "web" if i % 2 else "db"})
    p.spec.node_name = f"node-{i % 100}"
    c = p.spec.containers.add(name="main", image="registry.local/app:1.2.3")
    c.resources.requests["cpu"].value = "100m"
    c.resources.requests["memory"].value = "128Mi"
    c.ports.add(container_port=8080, protocol="TCP")
    p.status.phase = "Running"
    p.status.pod_ip = f"10.244.{i % 250}.{i % 200 + 2}"
    return p


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- the fake store, in a child process -----------------------------------------------------------


def _serve_fake(n: int, events: int, port_q: Any, go: Any) -> None:
    from pinnace.client.testing import FakeStore

    async def main() -> None:
        store = FakeStore()
        store.put_many(make_pod(i) for i in range(n))
        _server, endpoint = await store.serve()
        port_q.put(endpoint)
        while not go.is_set():
            await asyncio.sleep(0.01)
        pods = [make_pod(i) for i in range(min(n, events))]
        # The events are written to the history first, then the watch is broken: the informer
        # resumes from its last revision and receives them as fast as it can take them.
        for j in range(events):
            p = pods[j % len(pods)]
            p.metadata.annotations["bench/gen"] = str(j)
            store.put(p, notify=False)
        store.disconnect_watchers()
        await asyncio.sleep(3600)

    asyncio.run(main())


# -- measurement ----------------------------------------------------------------------------------


async def measure(endpoint: str, n: int, events: int, trigger: Any, page_size: int) -> dict[str, Any]:
    client = AsyncClient([endpoint], timeout=120, retry_timeout=60)
    queue: WorkQueue[str] = WorkQueue()
    inf: Informer[pod_pb2.Pod] = Informer(client, pod_pb2.Pod, page_size=page_size)
    inf.add_index("byNode", lambda p: [p.spec.node_name])
    updates = 0
    done = asyncio.Event()

    def on_add(p: pod_pb2.Pod) -> None:
        queue.add(f"{p.metadata.namespace}/{p.metadata.name}")

    first: list[tuple[float, float]] = []

    def on_update(old: pod_pb2.Pod, new: pod_pb2.Pod) -> None:
        nonlocal updates
        if not first:
            first.append((time.perf_counter(), time.process_time()))
        queue.add(f"{new.metadata.namespace}/{new.metadata.name}")
        updates += 1
        if updates >= events:
            done.set()

    inf.add_handler(on_add=on_add, on_update=on_update)
    t0, c0 = time.perf_counter(), time.process_time()
    await inf.start()
    await inf.wait_synced()
    sync_s, sync_cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(inf) >= n, f"informer has {len(inf)} of {n}"
    await asyncio.sleep(0.2)  # the watch is open
    t1, c1 = time.perf_counter(), time.process_time()
    await trigger()
    await asyncio.wait_for(done.wait(), 600)
    if first:  # from the first event on: the steady state, not the time to produce the events
        t1, c1 = first[0]
    ev_s, ev_cpu = time.perf_counter() - t1, time.process_time() - c1
    result = {
        "objects": len(inf),
        "initial_sync_s": round(sync_s, 3),
        "initial_sync_cpu_s": round(sync_cpu, 3),
        "events": updates,
        "events_per_s": round(updates / ev_s, 1),
        "events_per_cpu_s": round(updates / ev_cpu, 1) if ev_cpu > 0 else None,
        "rss_mib": round(rss_mib(), 1),
        "by_node_index_size": len(inf.by_index("byNode", "node-0")),
        "queue_len": len(queue),
    }
    await inf.stop()
    await client.close()
    return result


async def real_store(endpoint: str, n: int, events: int, page_size: int) -> dict[str, Any]:
    admin = AsyncClient([endpoint], timeout=60, retry_timeout=60)
    existing = (await admin.list(pod_pb2.Pod, limit=1)).remaining_item_count
    sem = asyncio.Semaphore(64)

    failures: list[str] = []

    async def create(i: int) -> None:
        async with sem:
            p = make_pod(i)
            p.status.Clear()
            try:
                await admin.create(p)
            except errors.AlreadyExists:
                pass
            except errors.PinnaceError as exc:
                failures.append(str(exc))

    for k in range(50):
        ns = cluster_pb2.Namespace()
        ns.metadata.name = f"ns-{k}"
        with contextlib.suppress(errors.AlreadyExists):
            await admin.create(ns)
    if existing < n:
        await asyncio.gather(*(create(i) for i in range(n)))
    if failures:
        raise SystemExit(f"{len(failures)} creates failed, e.g.: {failures[0]}")
    background: list[asyncio.Future[Any]] = []

    async def trigger() -> None:
        async def bump(j: int) -> None:
            async with sem:
                p = make_pod(j % n)
                await admin.mutate(
                    pod_pb2.Pod,
                    p.metadata.name,
                    p.metadata.namespace,
                    lambda o: o.metadata.annotations.update(g=str(j)),
                )

        background.append(
            asyncio.ensure_future(asyncio.gather(*(bump(j) for j in range(events)), return_exceptions=True))
        )

    try:
        result = await measure(endpoint, n, events, trigger, page_size)
        await asyncio.gather(*background, return_exceptions=True)
        result["note"] = "events are written through the store here, so events_per_s is bounded by its write rate"
        return result
    finally:
        await admin.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10,000 pods, 10,000 events")
    ap.add_argument("--objects", type=int, default=0)
    ap.add_argument("--events", type=int, default=0)
    ap.add_argument("--page-size", type=int, default=2000)
    ap.add_argument("--store", default="", help="a real store endpoint instead of the in-memory fake")
    args = ap.parse_args()
    n = args.objects or (10_000 if args.quick else 100_000)
    events = args.events or (10_000 if args.quick else 50_000)
    if args.store:
        result = asyncio.run(real_store(args.store, n, events, args.page_size))
        result["store"] = "real"
    else:
        ctx = mp.get_context("spawn")
        port_q = ctx.Queue()
        go = ctx.Event()
        child = ctx.Process(target=_serve_fake, args=(n, events, port_q, go), daemon=True)
        child.start()
        try:
            endpoint = port_q.get(timeout=600)

            async def trigger() -> None:
                go.set()

            result = asyncio.run(measure(endpoint, n, events, trigger, args.page_size))
            result["store"] = "fake (in-memory, separate process)"
        finally:
            child.terminate()
            child.join(10)
    result["targets"] = {"initial_sync_s": 5.0, "events_per_s": 5000}
    result["cpus"] = os.cpu_count()
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
