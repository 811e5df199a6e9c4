"""The SLA scenario shared by the end-to-end test and bench/sla.py: a service whose latency grows
with its load, its Deployment, Service and ApiSla, and a load driver run inside a node namespace."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pinnace.api import apps_pb2, sla_pb2
from tests.support.cluster import PY, LabCluster

LOAD_SCRIPT = Path(__file__).with_name("load.py")

# Each request sleeps UNIT seconds per request in flight (itself included): latency grows with load.
SERVER = """\
import asyncio
UNIT = {unit}
inflight = 0
async def handle(reader, writer):
    global inflight
    try:
        await reader.readuntil(b"\\r\\n\\r\\n")
    except Exception:
        writer.close()
        return
    inflight += 1
    try:
        n = inflight
        await asyncio.sleep(UNIT * n)
        body = f"{{writer.get_extra_info('sockname')[0]}} {{n}}\\n".encode()
        writer.write(b"HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n%s" % (len(body), body))
        await writer.drain()
    except Exception:
        pass
    finally:
        inflight -= 1
        writer.close()
async def main():
    srv = await asyncio.start_server(handle, "0.0.0.0", 8080, backlog=512)
    await srv.serve_forever()
asyncio.run(main())
"""


def manifests(
    name: str = "slow",
    unit: float = 0.1,
    latency: str = "1s",
    percent: str = "99%",
    cost: str = "",
    max_replicas: int = 8,
    window: str = "",
) -> str:
    """YAML for the Deployment (1 replica), its Service and the ApiSla (kind written as API-Sla)."""
    labels = {"app": name}
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "server",
                            "image": "python",
                            "command": ["python3", "-c", SERVER.format(unit=unit)],
                            "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                        }
                    ],
                },
            },
        },
    }
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    sla: dict[str, Any] = {
        "apiVersion": "pinnace.io/v1",
        "kind": "API-Sla",
        "metadata": {"name": f"{name}-sla"},
        "spec": {
            "percent": percent,
            "latency": latency,
            "selector": labels,
            "minReplicas": 1,
            "maxReplicas": max_replicas,
        },
    }
    if cost:
        sla["spec"]["cost"] = cost
    if window:
        sla["spec"]["window"] = window
    return yaml.safe_dump_all([deploy, svc, sla], sort_keys=False)


def apply(cluster: LabCluster, text: str) -> None:
    path = cluster.base / "sla-manifests.yaml"
    path.write_text(text)
    cluster.cli("apply", "-f", str(path))


@dataclass
class Load:
    """A load driver running in a node namespace; per-second client-side figures land in `seconds`."""

    proc: subprocess.Popen[str]
    started: float
    seconds: list[dict[str, Any]] = field(default_factory=list)
    total: dict[str, Any] = field(default_factory=dict)
    reader: threading.Thread | None = None

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if "total" in row:
                self.total = row["total"]
            else:
                self.seconds.append(row)

    def wait(self, timeout: float) -> dict[str, Any]:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.reader is not None:
            self.reader.join(5)
        return self.total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start_load(cluster: LabCluster, ns: str, ip: str, concurrency: int, seconds: float) -> Load:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, PY, str(LOAD_SCRIPT), ip, "80", str(concurrency), str(seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    load = Load(proc, time.monotonic())
    load.reader = threading.Thread(target=load._read, daemon=True)
    load.reader.start()
    return load


def replicas(cluster: LabCluster, name: str = "slow") -> int:
    assert cluster.client is not None
    d = cluster.client.get(apps_pb2.Deployment, name, "default")
    return d.spec.replicas if d.spec.HasField("replicas") else 1


def sla(cluster: LabCluster, name: str = "slow") -> sla_pb2.ApiSla:
    assert cluster.client is not None
    return cluster.client.get(sla_pb2.ApiSla, f"{name}-sla", "default")


def condition(obj: sla_pb2.ApiSla, ctype: str) -> bool:
    return any(c.type == ctype and c.status == "True" for c in obj.status.conditions)
