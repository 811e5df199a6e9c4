"""Benchmark the volume agent. Prints one JSON line.

    python bench/volumes.py           # 200 emptyDir setups, 1,000 claims against 1,000 volumes
    python bench/volumes.py --quick   # 50 setups, 300 claims (under a minute)

Figures: emptydir_p50_ms / emptydir_p99_ms (MountVolumes of a pod with one emptyDir, over the
agent's unix socket, against a real `python -m services.volagent` process), bind_1000_s (a real
store holding 1,000 Pending claims and 1,000 Available volumes of shuffled sizes: seconds from
the binder's start until every claim is Bound, both sides written; null with --quick, which
reports bind_<n>_s instead). Targets: emptydir_p50_ms <= 20, bind_1000_s <= 10.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc

from pinnace.api import meta_pb2, nodelocal_pb2, nodelocal_pb2_grpc, pod_pb2, storage_pb2
from pinnace.client import AsyncClient
from services.volagent.binder.controller import Binder
from tests.e2e.volagent.agent import Agent
from tests.support.store import start_store


def emptydir_latencies(agent: Agent, n: int) -> list[float]:
    out = []
    with grpc.insecure_channel(f"unix:{agent.socket}") as ch:
        stub = nodelocal_pb2_grpc.VolumesStub(ch)
        uids = []
        for i in range(n):
            uid = str(uuid.uuid4())
            pod = pod_pb2.Pod(metadata=meta_pb2.ObjectMeta(name=f"b{i}", namespace="default", uid=uid))
            pod.spec.volumes.add(name="scratch").empty_dir.SetInParent()
            t = time.perf_counter()
            stub.MountVolumes(nodelocal_pb2.MountVolumesRequest(pod=pod), timeout=10)
            out.append((time.perf_counter() - t) * 1000)
            uids.append(uid)
        for uid in uids:
            stub.UnmountVolumes(nodelocal_pb2.UnmountVolumesRequest(namespace="default", uid=uid), timeout=10)
    return sorted(out)


def pv(i: int, base: Path) -> storage_pb2.PersistentVolume:
    v = storage_pb2.PersistentVolume(metadata=meta_pb2.ObjectMeta(name=f"pv-{i:05d}"))
    v.spec.capacity["storage"].value = f"{1 + i % 10}Gi"
    v.spec.access_modes.append("ReadWriteOnce")
    v.spec.persistent_volume_reclaim_policy = "Retain"
    v.spec.host_path.path = str(base / f"v{i}")
    return v


def pvc(i: int) -> storage_pb2.PersistentVolumeClaim:
    c = storage_pb2.PersistentVolumeClaim(metadata=meta_pb2.ObjectMeta(name=f"claim-{i:05d}", namespace="default"))
    c.spec.access_modes.append("ReadWriteOnce")
    c.spec.resources.requests["storage"].value = f"{1 + (i * 7) % 10}Gi"
    c.spec.storage_class_name = ""
    return c


async def bind_seconds(endpoint: str, n: int, base: Path) -> float:
    client = AsyncClient([endpoint])
    sem = asyncio.Semaphore(64)

    async def create(obj: object) -> None:
        async with sem:
            await client.create(obj)  # type: ignore[type-var]

    await asyncio.gather(*(create(pv(i, base)) for i in range(n)))
    await asyncio.gather(*(create(pvc(i)) for i in range(n)))
    binder = Binder(AsyncClient([endpoint]), provision_dir=str(base / "provisioned"))
    t0 = time.monotonic()
    task = asyncio.create_task(binder.run())
    try:
        while binder.binds < n:
            if time.monotonic() - t0 > 300:
                raise TimeoutError(f"only {binder.binds} of {n} claims bound after 300s")
            await asyncio.sleep(0.01)
        took = time.monotonic() - t0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    claims = (await client.list_all(storage_pb2.PersistentVolumeClaim, "default")).items
    assert sum(1 for c in claims if c.status.phase == "Bound" and c.spec.volume_name) == n
    await client.close()
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_empty, n_claims = (50, 300) if args.quick else (200, 1000)
    with tempfile.TemporaryDirectory(prefix="pinnace-bench-vol-") as tmp:
        base = Path(tmp)
        store = start_store(base / "store")
        agent = Agent(base, store.endpoints[0], binder=False)
        try:
            agent.start()
            lat = emptydir_latencies(agent, n_empty)
            bind = asyncio.run(bind_seconds(store.endpoints[0], n_claims, base))
        finally:
            agent.stop()
            store.stop()
    result = {
        "emptydir_p50_ms": round(statistics.median(lat), 2),
        "emptydir_p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2),
        "emptydir_samples": len(lat),
        "bind_1000_s": round(bind, 2) if n_claims == 1000 else None,
        f"bind_{n_claims}_s": round(bind, 2),
        "cpus": os.cpu_count(),
        "load1": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
