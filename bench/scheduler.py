"""Scheduler and workload-controller benchmark; prints one JSON line.

- decide_pods_per_s: decisions alone, in memory (the scheduler's cache + plugins, no store), 5,000 nodes
  (decide_pods_per_cpu_s: the same per CPU second, which a busy shared machine does not distort).
- e2e_pods_per_s: NODES nodes and PODS pending pods in a real store, then `python -m services.scheduler`
  started; pods bound per second from the first bind to the last (e2e_total_s adds scheduler start-up:
  listing every node and pod).
- deploy_1000_s: with `python -m services.controllers` running, a Deployment scaled 0 -> 1,000 until
  1,000 pods exist.

    python bench/scheduler.py            # 5,000 nodes, 10,000 pods
    python bench/scheduler.py --quick    # 500 nodes, 1,000 pods (under a minute)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTRA_SCHED_ARGS: list[str] = os.environ.get("BENCH_SCHED_ARGS", "").split()
sys.path.insert(0, str(REPO))

from pinnace.api import apps_pb2, meta_pb2, node_pb2, pod_pb2  # noqa: E402
from pinnace.client import AsyncClient  # noqa: E402
from services.scheduler.harness import Harness  # noqa: E402
from tests.support.store import start_store  # noqa: E402


def make_node(i: int) -> node_pb2.Node:
    n = node_pb2.Node()
    n.metadata.name = f"node-{i:05d}"
    n.metadata.labels["kubernetes.io/hostname"] = n.metadata.name
    n.metadata.labels["topology.kubernetes.io/zone"] = f"zone-{i % 3}"
    for k, v in (("cpu", "32"), ("memory", "128Gi"), ("pods", "110")):
        n.status.capacity[k].CopyFrom(meta_pb2.Quantity(value=v))
        n.status.allocatable[k].CopyFrom(meta_pb2.Quantity(value=v))
    n.status.conditions.add(type="Ready", status="True")
    return n


def make_pod(i: int) -> pod_pb2.Pod:
    p = pod_pb2.Pod()
    p.metadata.name = f"pod-{i:06d}"
    p.metadata.namespace = "default"
    p.metadata.labels["app"] = f"app-{i % 20}"
    c = p.spec.containers.add(name="c", image="busybox")
    c.resources.requests["cpu"].CopyFrom(meta_pb2.Quantity(value="100m"))
    c.resources.requests["memory"].CopyFrom(meta_pb2.Quantity(value="128Mi"))
    return p


def bench_decide(nodes: int, pods: int) -> tuple[float, float]:
    h = Harness([make_node(i) for i in range(nodes)])
    work = [make_pod(i) for i in range(pods)]
    t0, c0 = time.perf_counter(), time.process_time()
    for p in work:
        if h.schedule(p).node is None:
            raise RuntimeError("bench pod did not fit")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return pods / wall, pods / max(cpu, 1e-9)


async def _bounded(n: int, fn, concurrency: int = 64) -> None:  # type: ignore[no-untyped-def]
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await fn(i)

    await asyncio.gather(*(one(i) for i in range(n)))


def _spawn(module: str, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", module, *args], cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


async def bench_e2e(tmp: Path, nodes: int, pods: int) -> dict[str, float]:
    cluster = start_store(tmp / "store-e2e")
    client = AsyncClient(cluster.endpoints, timeout=30, retry_timeout=60)
    sched: subprocess.Popen[bytes] | None = None
    try:

        async def add_node(i: int) -> None:
            n = make_node(i)
            created = await client.create(node_pb2.Node(metadata=n.metadata, spec=n.spec))
            created.status.CopyFrom(n.status)
            await client.update_status(created)

        t0 = time.perf_counter()
        await _bounded(nodes, add_node)
        await _bounded(pods, lambda i: client.create(make_pod(i)))
        setup = time.perf_counter() - t0
        rev = await client.current_revision("pod")
        bound = 0
        first = last = 0.0
        start = time.perf_counter()
        sched = _spawn(
            "services.scheduler",
            ["--store", ",".join(cluster.endpoints), "--log-level", "warning", *EXTRA_SCHED_ARGS],
            tmp / "sched.log",
        )
        names: set[str] = set()
        async for ev in client.watch(pod_pb2.Pod, "default", rev):
            if ev.object.spec.node_name and ev.object.metadata.name not in names:
                names.add(ev.object.metadata.name)
                bound += 1
                last = time.perf_counter()
                if bound == 1:
                    first = last
                if bound == pods:
                    break
            if time.perf_counter() - start > 600:
                raise RuntimeError(f"only {bound}/{pods} pods bound in 600 s")
        return {
            "e2e_pods_per_s": round(pods / max(last - first, 1e-9), 1),
            "e2e_total_s": round(last - start, 2),
            "store_setup_s": round(setup, 2),
        }
    finally:
        if sched is not None:
            _stop(sched)
        await client.close()
        cluster.stop()


async def bench_deploy(tmp: Path, replicas: int) -> float:
    cluster = start_store(tmp / "store-deploy")
    client = AsyncClient(cluster.endpoints, timeout=30, retry_timeout=60)
    ctrl = _spawn(
        "services.controllers",
        ["--store", ",".join(cluster.endpoints), "--controllers", "replicaset,deployment", "--log-level", "warning"],
        tmp / "controllers.log",
    )
    try:
        d = apps_pb2.Deployment()
        d.metadata.name = "bench"
        d.metadata.namespace = "default"
        d.spec.replicas = 0
        d.spec.selector.match_labels["app"] = "bench"
        d.spec.template.metadata.labels["app"] = "bench"
        d.spec.template.spec.containers.add(name="c", image="busybox")
        await client.create(d)
        while not (await client.list(apps_pb2.ReplicaSet, "default")).items:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # every controller is leading and idle
        rev = await client.current_revision("pod")

        def scale(dep: apps_pb2.Deployment) -> None:
            dep.spec.replicas = replicas

        t0 = time.perf_counter()
        await client.mutate(apps_pb2.Deployment, "bench", "default", scale)
        seen = 0
        async for ev in client.watch(pod_pb2.Pod, "default", rev):
            if ev.type == "ADDED":
                seen += 1
                if seen >= replicas:
                    break
            if time.perf_counter() - t0 > 300:
                raise RuntimeError(f"only {seen}/{replicas} pods in 300 s")
        return time.perf_counter() - t0
    finally:
        _stop(ctrl)
        await client.close()
        cluster.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="500 nodes, 1,000 pods; under a minute")
    ap.add_argument("--nodes", type=int, default=None)
    ap.add_argument("--pods", type=int, default=None)
    ap.add_argument("--deploy-replicas", type=int, default=1000)
    ap.add_argument("--skip", default="", help="comma list of phases to skip: decide,e2e,deploy")
    args = ap.parse_args()
    nodes = args.nodes or (500 if args.quick else 5000)
    pods = args.pods or (1000 if args.quick else 10000)
    skip = set(args.skip.split(","))
    out: dict[str, object] = {"nodes": nodes, "pods": pods, "quick": args.quick}
    if "decide" not in skip:
        wall_rate, cpu_rate = bench_decide(5000, 2000 if args.quick else 10000)
        out["decide_pods_per_s"] = round(wall_rate, 1)
        out["decide_pods_per_cpu_s"] = round(cpu_rate, 1)  # the same, per second of CPU (load-independent)
        out["decide_nodes"] = 5000
    with tempfile.TemporaryDirectory(prefix="pinnace-bench-sched-") as d:
        tmp = Path(d)
        if "e2e" not in skip:
            out.update(asyncio.run(bench_e2e(tmp, nodes, pods)))
        if "deploy" not in skip:
            out["deploy_1000_s"] = round(asyncio.run(bench_deploy(tmp, args.deploy_replicas)), 2)
            out["deploy_replicas"] = args.deploy_replicas
    print(json.dumps(out))


if __name__ == "__main__":
    main()
