"""Benchmark the whole cluster: `pinnace up` to a Ready node, a 3-node lab up, and 300 pods across
3 lab nodes from created to Running. Prints one JSON line: up_s, lab_up_s, pods_300_p99_s (and
pods_300_p50_s, pods). `--quick` uses 60 pods. Root only; everything runs in namespaces with a
bench-only prefix and is removed afterwards."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pinnace.api import pod_pb2
from tests.support.cluster import LabCluster


def pod(i: int) -> pod_pb2.Pod:
    p = pod_pb2.Pod()
    p.metadata.name = f"bench-{i}"
    p.metadata.namespace = "default"
    p.metadata.labels["bench"] = "pods"
    p.spec.containers.add(name="c", image="busybox", command=["sleep", "3600"])
    return p


def startup_latencies(c: LabCluster, n: int, timeout: float = 300) -> list[float]:
    """Create n pods; a watch (not polling) records when each is first seen Running."""
    assert c.client is not None
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    rev = c.client.list(pod_pb2.Pod, "default", label_selector="bench=pods").revision
    done = threading.Event()

    def watch() -> None:
        assert c.client is not None
        for ev in c.client.watch(pod_pb2.Pod, "default", from_revision=rev, label_selector="bench=pods"):
            name = ev.object.metadata.name
            if ev.type != "DELETED" and ev.object.status.phase == "Running" and name not in running:
                running[name] = time.time()
                if len(running) >= n:
                    break
            if done.is_set():
                break

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    for i in range(n):
        created[f"bench-{i}"] = time.time()
        c.client.create(pod(i))
    watcher.join(timeout)
    done.set()
    for i in range(n):
        c.client.delete(pod_pb2.Pod, f"bench-{i}", "default", grace_period_seconds=0)
    return sorted(running[k] - created[k] for k in running if k in created)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ns = ap.parse_args()
    n = 60 if ns.quick else 300
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        one = LabCluster(Path(tmp) / "one", nodes=1, store_replicas=1, prefix="pnb1")
        try:
            one.up()
            out["up_s"] = round(one.up_seconds, 2)
        finally:
            one.down()
        lab = LabCluster(Path(tmp) / "lab", nodes=3, store_replicas=3, prefix="pnb3")
        try:
            lab.up()
            out["lab_up_s"] = round(lab.up_seconds, 2)
            lat = startup_latencies(lab, n)
            out["pods"] = n
            out["pods_running"] = len(lat)
            out["pods_300_p50_s"] = round(pct(lat, 0.5), 3)
            out["pods_300_p99_s"] = round(pct(lat, 0.99), 3)
        finally:
            lab.down()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
