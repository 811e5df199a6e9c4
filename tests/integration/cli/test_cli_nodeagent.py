"""`pinnace logs` and `pinnace exec` against a stand-in NodeAgent gRPC server on loopback, found the
way the CLI finds a real one: the pod's node, its InternalIP and daemonEndpoints.kubeletEndpoint.port."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from pinnace.api import node_pb2, nodelocal_pb2, nodelocal_pb2_grpc, pod_pb2
from pinnace.client import Client
from tests.support.store import StoreCluster, start_store

REPO = Path(__file__).resolve().parents[3]


class FakeAgent(nodelocal_pb2_grpc.NodeAgentServicer):
    def __init__(self) -> None:
        self.requests: list[Any] = []

    def Logs(self, request: nodelocal_pb2.LogsRequest, context: Any) -> Iterator[nodelocal_pb2.LogChunk]:
        self.requests.append(request)
        if request.container != "app":
            context.abort(grpc.StatusCode.NOT_FOUND, f"container {request.container} not found")
        lines = [f"line {i}\n" for i in range(10)]
        if request.tail_lines >= 0:
            lines = lines[-request.tail_lines :]
        for line in lines:
            yield nodelocal_pb2.LogChunk(data=line.encode())

    def Exec(
        self, request_iterator: Iterator[nodelocal_pb2.ExecInput], context: Any
    ) -> Iterator[nodelocal_pb2.ExecOutput]:
        first = next(request_iterator)
        start = first.start
        self.requests.append(start)
        stdin = b""
        if start.stdin:
            for msg in request_iterator:
                if msg.WhichOneof("input") == "stdin":
                    stdin += msg.stdin
                elif msg.WhichOneof("input") == "close_stdin":
                    break
        yield nodelocal_pb2.ExecOutput(stdout=f"ran {' '.join(start.command)}\n".encode())
        if stdin:
            yield nodelocal_pb2.ExecOutput(stdout=b"stdin: " + stdin.upper())
        yield nodelocal_pb2.ExecOutput(stderr=b"warn\n")
        yield nodelocal_pb2.ExecOutput(exit_code=3)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreCluster]:
    cluster = start_store(tmp_path_factory.mktemp("store"))
    yield cluster
    cluster.stop()


@pytest.fixture
def agent() -> Iterator[tuple[FakeAgent, int]]:
    fake = FakeAgent()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    nodelocal_pb2_grpc.add_NodeAgentServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield fake, port
    server.stop(None)


def test_logs_and_exec(store: StoreCluster, agent: tuple[FakeAgent, int], tmp_path: Path) -> None:
    fake, port = agent
    with Client(store.endpoints) as c:
        node = node_pb2.Node()
        node.metadata.name = "agent-node"
        c.create(node)

        def publish(n: node_pb2.Node) -> None:
            n.status.addresses.add(type="InternalIP", address="127.0.0.1")
            n.status.daemon_endpoints.kubelet_endpoint.port = port

        c.mutate_status(node_pb2.Node, "agent-node", "", publish)
        pod = pod_pb2.Pod()
        pod.metadata.name = "talker"
        pod.metadata.namespace = "default"
        pod.spec.node_name = "agent-node"
        pod.spec.containers.add(name="app", image="busybox")
        pod.spec.containers.add(name="side", image="busybox")
        c.create(pod)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PINNACE_STORE": ",".join(store.endpoints),
        "PINNACE_CONFIG": str(tmp_path / "cfg"),
    }

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pinnace.cli.main", *args],
            env=env,
            cwd=str(REPO),
            capture_output=True,
            text=True,
            input=stdin,
            timeout=60,
        )

    p = cli("logs", "talker", "--tail", "3")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "line 7\nline 8\nline 9\n"
    assert 'Defaulted container "app"' in p.stderr
    assert fake.requests[-1].namespace == "default" and fake.requests[-1].pod == "talker"
    p = cli("logs", "talker", "-c", "nope")
    assert p.returncode == 1 and "not in pod talker" in p.stderr
    p = cli("logs", "pod/talker", "-c", "side")
    assert p.returncode == 1 and "container side not found" in p.stderr

    p = cli("exec", "talker", "-c", "app", "--", "ls", "-l")
    assert p.returncode == 3, p.stderr
    assert p.stdout == "ran ls -l\n" and p.stderr == "warn\n"
    p = cli("exec", "-i", "talker", "-c", "app", "--", "cat", stdin="hello")
    assert p.returncode == 3 and "stdin: HELLO" in p.stdout, p.stderr

    # The agent goes away: the error names the node and the address.
    with Client(store.endpoints) as c:

        def move(n: node_pb2.Node) -> None:
            n.status.daemon_endpoints.kubelet_endpoint.port = 1

        c.mutate_status(node_pb2.Node, "agent-node", "", move)
    p = cli("logs", "talker", "-c", "app")
    assert p.returncode == 1 and "cannot reach the node agent of node agent-node at 127.0.0.1:1" in p.stderr
