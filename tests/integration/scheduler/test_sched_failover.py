"""Scheduler leader failover with real processes: kill the active scheduler, the standby takes over,
and no pod is ever bound twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from pinnace.api import cluster_pb2, pod_pb2
from pinnace.client import AsyncClient, errors
from tests.integration.scheduler.support import create_node, make_node, make_pod, running_store, wait_for

REPO = Path(__file__).resolve().parents[3]


def start_scheduler(eps: list[str], identity: str, log: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "services.scheduler",
        "--store",
        ",".join(eps),
        "--identity",
        identity,
        "--lease-duration",
        "2",
        "--renew-interval",
        "0.5",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


async def holder(c: AsyncClient) -> str:
    try:
        lease = await c.get(cluster_pb2.Lease, "scheduler", "pinnace-system")
    except errors.NotFound:
        return ""
    return lease.spec.holder_identity


async def test_standby_takes_over_without_double_binding(tmp_path: Path) -> None:
    async with running_store(tmp_path) as eps:
        c = AsyncClient(eps)
        for i in range(3):
            await create_node(c, make_node(f"n{i}", cpu="32"))
        rev = await c.current_revision("pod")
        procs = {name: start_scheduler(eps, name, tmp_path / f"{name}.log") for name in ("s1", "s2")}
        try:
            await wait_for(lambda: _has_holder(c), timeout=30, what="a leader")
            first = await holder(c)

            async def bound(n: int) -> bool:
                pods = (await c.list(pod_pb2.Pod, "default")).items
                return sum(bool(p.spec.node_name) for p in pods) == n

            await asyncio.gather(*(c.create(make_pod(f"a{i}", cpu="10m")) for i in range(20)))
            await wait_for(lambda: bound(20), timeout=30, what="first 20 bound")
            procs[first].send_signal(signal.SIGKILL)
            procs[first].wait(10)
            await asyncio.gather(*(c.create(make_pod(f"b{i}", cpu="10m")) for i in range(20)))
            await wait_for(lambda: bound(40), timeout=30, what="40 bound after failover")
            second = await holder(c)
            assert second and second != first
            nodes: dict[str, set[str]] = {}
            it = c.watch(pod_pb2.Pod, None, rev).__aiter__()
            while True:
                try:
                    ev = await asyncio.wait_for(it.__anext__(), 1.0)
                except (TimeoutError, StopAsyncIteration):
                    break
                if ev.object.spec.node_name:
                    nodes.setdefault(ev.object.metadata.name, set()).add(ev.object.spec.node_name)
            assert len(nodes) == 40 and all(len(v) == 1 for v in nodes.values())
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.terminate()
            for p in procs.values():
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            await c.close()


async def _has_holder(c: AsyncClient) -> bool:
    return bool(await holder(c))
