"""Pod startup latency on one node with the host runtime: bind -> Running p50/p99, and node agent RSS.

Starts a store and a node agent (real processes), creates N pods already bound to the node (at a
steady rate, like Kubernetes' density tests), watches until each is Running, and prints one JSON line:
{"pods": N, "p50_ms": ..., "p99_ms": ..., "max_ms": ..., "rss_mib": ..., "rate_per_s": ...}.

    sudo python bench/pod_startup.py            # 100 pods
    sudo python bench/pod_startup.py --quick    # 20 pods
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pinnace.api import pod_pb2  # noqa: E402
from pinnace.client import AsyncClient  # noqa: E402
from tests.support.store import free_port, start_store  # noqa: E402


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its waited-for children) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    if not s:
        return 0.0
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


async def run(n: int, rate: float, base: Path) -> dict[str, float]:
    node = "bench-" + uuid.uuid4().hex[:6]
    store = start_store(base / "store")
    port = free_port()
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.nodeagent",
            "--node-name",
            node,
            "--store",
            ",".join(store.endpoints),
            "--runtime",
            "host",
            "--run-dir",
            str(base / "run"),
            "--data-dir",
            str(base / "data"),
            "--address",
            "127.0.0.1",
            "--port",
            str(port),
            "--listen-host",
            "127.0.0.1",
            "--log-level",
            "warning",
        ],
        cwd=REPO,
        stdout=open(base / "agent.log", "wb"),
        stderr=subprocess.STDOUT,
    )
    client = AsyncClient(store.endpoints)
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    peak_rss = 0.0
    try:
        await asyncio.sleep(1.5)  # agent registers and its informer syncs
        rev = (await client.list(pod_pb2.Pod, namespace="default")).revision
        cpu_before = cpu_seconds(agent.pid)
        done = asyncio.Event()

        async def watch() -> None:
            async for ev in client.watch(pod_pb2.Pod, namespace="default", from_revision=rev):
                if ev.type == "BOOKMARK":
                    continue
                name = ev.object.metadata.name
                if ev.object.status.phase == "Running" and name not in running and name in created:
                    running[name] = time.monotonic()
                    if len(running) >= n:
                        done.set()
                        return

        watcher = asyncio.create_task(watch())
        for i in range(n):
            pod = pod_pb2.Pod()
            pod.metadata.name = f"p{i:04d}"
            pod.metadata.namespace = "default"
            pod.spec.node_name = node
            pod.spec.termination_grace_period_seconds = 1
            pod.spec.containers.add(name="c", image="busybox", command=["sleep", "3600"])
            created[pod.metadata.name] = time.monotonic()
            await client.create(pod)
            await asyncio.sleep(1.0 / rate)
        await asyncio.wait_for(done.wait(), 120)
        watcher.cancel()
        await asyncio.sleep(1.0)
        peak_rss = rss_mib(agent.pid)
        agent_cpu = cpu_seconds(agent.pid) - cpu_before
        lat = [(running[k] - created[k]) * 1000 for k in running]
        result = {
            "pods": n,
            "rate_per_s": rate,
            "p50_ms": round(statistics.median(lat), 1),
            "p99_ms": round(percentile(lat, 99), 1),
            "max_ms": round(max(lat), 1),
            "rss_mib": round(peak_rss, 1),
            "agent_cpu_ms_per_pod": round(agent_cpu * 1000 / n, 1),
            "loadavg_1m": os.getloadavg()[0],
        }
        # tear down: delete every pod and wait until the agent has removed them
        for name in created:
            await client.delete(pod_pb2.Pod, name, "default")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if not (await client.list(pod_pb2.Pod, namespace="default")).items:
                break
            await asyncio.sleep(0.5)
        return result
    finally:
        await client.close()
        agent.terminate()
        try:
            agent.wait(15)
        except subprocess.TimeoutExpired:
            agent.kill()
        store.stop()
        _force_cleanup(node, base)


def _force_cleanup(node: str, base: Path) -> None:
    """Leave nothing behind even if the run failed half way."""
    import shutil
    import signal

    pods = base / "data" / "pods"
    if pods.is_dir():
        for d in pods.iterdir():
            ns = "pn-" + d.name.replace("-", "")[:12]
            if os.path.exists(f"/run/netns/{ns}"):
                subprocess.run(["ip", "netns", "del", ns], check=False)
    for ctrl in ("memory", "cpu", "pids"):
        root = Path("/sys/fs/cgroup") / ctrl / "pinnace" / node
        if not root.exists():
            root = Path("/sys/fs/cgroup/pinnace.slice") / node
        if not root.exists():
            continue
        for dirpath, _, _ in sorted(os.walk(root), key=lambda t: -t[0].count("/")):
            try:
                for pid in (Path(dirpath) / "cgroup.procs").read_text().split():
                    os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        for dirpath, _, _ in sorted(os.walk(root), key=lambda t: -t[0].count("/")):
            for _ in range(20):
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
    shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=100)
    ap.add_argument("--rate", type=float, default=20.0, help="pods created per second")
    ap.add_argument("--quick", action="store_true", help="20 pods (under a minute)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print(json.dumps({"error": "needs root (network namespaces, cgroups)"}))
        sys.exit(2)
    n = 20 if args.quick else args.pods
    base = Path(tempfile.mkdtemp(prefix="pinnace-bench-"))
    result = asyncio.run(run(n, args.rate, base))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
