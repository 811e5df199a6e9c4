"""The docker-compose demo, built offline and run for real: 3 store replicas, scheduler,
controllers and 3 node containers on an internal network; 3 nodes Ready; a ClusterIP request
from every node reaches pods on other nodes over VXLAN; down removes it all.

Runs on a private dockerd without iptables rules (tests/support/dockerd.py). The first build
makes the base image with debootstrap from Debian's mirror (a few minutes); later runs reuse it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dockerd import private_dockerd, unavailable_reason
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "deploy" / "compose" / "demo.sh"

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(bool(unavailable_reason()), reason=unavailable_reason() or "ok"),
]


def demo(host: str, *args: str, input: str | None = None, timeout: float = 900) -> str:
    env = dict(os.environ, DOCKER_HOST=host)
    proc = subprocess.run(
        ["bash", str(DEMO), *args], env=env, capture_output=True, text=True, timeout=timeout, input=input
    )
    if proc.returncode != 0:
        raise AssertionError(f"demo.sh {' '.join(args)} failed: {proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc.stdout


@pytest.fixture(scope="module")
def compose() -> Iterator[str]:
    with private_dockerd() as host:
        demo(host, "build")
        try:
            demo(host, "up", timeout=300)
            yield host
        finally:
            demo(host, "down", timeout=300)
            left = subprocess.run(
                ["docker", "ps", "-aq", "--filter", "label=com.docker.compose.project=pinnace-demo"],
                env=dict(os.environ, DOCKER_HOST=host),
                capture_output=True,
                text=True,
            ).stdout.split()
            assert not left, f"containers left behind: {left}"


def test_three_nodes_ready_and_cross_node_cluster_ip(compose: str) -> None:
    host = compose
    eventually(lambda: demo(host, "cli", "get", "nodes").count(" Ready ") == 3, 180, what="3 Ready nodes", interval=2)
    demo(host, "cli", "apply", "-f", "-", input=(ROOT / "examples" / "web.yaml").read_text())

    def running() -> list[dict[str, object]]:
        items = json.loads(demo(host, "cli", "get", "pods", "-l", "app=web", "-o", "json")).get("items", [])
        ok = [p for p in items if p.get("status", {}).get("phase") == "Running" and p["status"].get("podIP")]
        return ok if len(ok) == 3 else []

    pods = eventually(running, 180, what="3 running web pods", interval=2)
    assert len({p["spec"]["nodeName"] for p in pods}) >= 2  # type: ignore[index]
    ip = json.loads(demo(host, "cli", "get", "svc", "web", "-o", "json"))["spec"]["clusterIP"]
    env = dict(os.environ, DOCKER_HOST=host)
    code = f"import urllib.request; print(urllib.request.urlopen('http://{ip}/', timeout=3).read().decode())"
    for n in (1, 2, 3):

        def answer(n: int = n) -> str:
            proc = subprocess.run(
                ["docker", "exec", f"pinnace-demo_node{n}_1", "python3", "-c", code],
                env=env, capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            return proc.stdout if proc.returncode == 0 else ""

        eventually(answer, 60, what=f"ClusterIP from node{n}", interval=2)

        def spread(answer=answer) -> set[str]:  # type: ignore[no-untyped-def]
            # Endpoints and each node's rules follow the pods becoming ready, a moment later.
            seen = {a.split()[2] for a in (answer() for _ in range(8)) if a}
            return seen if len(seen) >= 2 else set()

        assert eventually(spread, 60, what=f"answers from two pods via node{n}", interval=2)
