"""A network-only cluster for the netagent's tests: a netlab, a store, one netagent per node.

No node agent: Node, Service and Endpoints objects are written directly, and "pods" are network
namespaces wired by calling the agents' SetupPod over their unix sockets. The store is the SDK's
FakeStore in a background thread (or any store endpoint given), reached from inside each node
namespace through the lab's forwarder at <node-ip>:7000 (so pods reach it too).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc

from pinnace.api import (
    meta_pb2,
    netdiag_pb2,
    netdiag_pb2_grpc,
    node_pb2,
    nodelocal_pb2,
    nodelocal_pb2_grpc,
    pod_pb2,
    service_pb2,
)
from pinnace.client import Client
from tests.support.netlab import Lab

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
STORE_PORT_IN_NODE = 7000
HTTP_SERVER = r"""
import http.server, sys
body = sys.argv[1].encode()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        out = body + b" " + self.client_address[0].encode()
        self.send_response(200); self.send_header("Content-Length", str(len(out))); self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer.allow_reuse_address = True
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[2])), H).serve_forever()
"""


class FakeStoreThread:
    """The SDK's in-memory FakeStore served from its own thread on 127.0.0.1."""

    def __init__(self) -> None:
        from pinnace.client.testing import FakeStore

        self.fake = FakeStore()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server, self.endpoint = asyncio.run_coroutine_threadsafe(self.fake.serve(), self.loop).result()
        self.port = int(self.endpoint.rsplit(":", 1)[1])

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(None), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@dataclass
class Pod:
    namespace: str
    name: str
    uid: str
    node: str
    netns: str
    ip: str = ""
    resp: nodelocal_pb2.SetupPodResponse | None = None

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"


@dataclass
class NetCluster:
    lab: Lab
    store_port: int
    workdir: str
    backend: str = "vxlan"
    agents: dict[str, subprocess.Popen[Any]] = field(default_factory=dict)
    pods: list[Pod] = field(default_factory=list)
    client: Client | None = None

    def __post_init__(self) -> None:
        self.client = Client([f"127.0.0.1:{self.store_port}"])

    def close(self) -> None:
        for name in list(self.agents):
            self.stop_agent(name)
        if self.client is not None:
            self.client.close()

    # -- nodes and agents ------------------------------------------------------------------
    def pod_cidr(self, node: str) -> str:
        return f"10.244.{self.lab.node(node).index}.0/24"

    def register_nodes(self) -> None:
        assert self.client is not None
        for n in self.lab.nodes:
            self.lab.forward(n.netns, STORE_PORT_IN_NODE, self.store_port)
            node = node_pb2.Node(metadata=meta_pb2.ObjectMeta(name=n.name))
            node.spec.pod_cidr = self.pod_cidr(n.name)
            node.status.addresses.add(type="InternalIP", address=n.ip)
            self.client.create(node)

    def run_dir(self, node: str) -> str:
        return os.path.join(self.workdir, node, "run")

    def socket(self, node: str) -> str:
        return os.path.join(self.run_dir(node), "netagent.sock")

    def start_agent(self, node: str, *extra: str) -> None:
        n = self.lab.node(node)
        logf = open(os.path.join(self.workdir, f"{node}-agent.log"), "ab")
        argv = [
            sys.executable,
            "-m",
            "services.netagent",
            "--node-name",
            node,
            "--store",
            f"{n.ip}:{STORE_PORT_IN_NODE}",
            "--backend",
            self.backend,
            "--run-dir",
            self.run_dir(node),
            "--data-dir",
            os.path.join(self.workdir, node, "data"),
            "--min-sync-period",
            "0.1",
            "--log-level",
            "debug",
            *extra,
        ]
        self.agents[node] = self.lab.spawn(n.netns, argv, stdout=logf, stderr=logf, cwd=REPO)
        self.wait_ready(node)

    def stop_agent(self, node: str) -> None:
        p = self.agents.pop(node, None)
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def channel(self, node: str) -> grpc.Channel:
        return grpc.insecure_channel(f"unix:{self.socket(node)}")

    def wait_ready(self, node: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if os.path.exists(self.socket(node)):
                try:
                    with self.channel(node) as ch:
                        st = netdiag_pb2_grpc.NetDiagStub(ch).State(netdiag_pb2.NetStateRequest(), timeout=3)
                        if st.pod_cidr and st.dns_serving:
                            return
                except grpc.RpcError as e:
                    last = str(e.code())
            p = self.agents.get(node)
            if p is not None and p.poll() is not None:
                raise RuntimeError(f"netagent on {node} exited: {p.returncode}; see {self.workdir}/{node}-agent.log")
            time.sleep(0.2)
        raise TimeoutError(f"netagent on {node} not ready ({last})")

    def state(self, node: str, services: list[str] | None = None) -> netdiag_pb2.NetState:
        with self.channel(node) as ch:
            return netdiag_pb2_grpc.NetDiagStub(ch).State(netdiag_pb2.NetStateRequest(services=services or []))

    # -- pods ------------------------------------------------------------------------------
    def add_pod(self, node: str, name: str, namespace: str = "default") -> Pod:
        uid = str(uuid.uuid4())
        netns = f"{self.lab.tag}p{len(self.pods)}"
        self.lab.add_netns(netns)
        pod = Pod(namespace=namespace, name=name, uid=uid, node=node, netns=netns)
        self.pods.append(pod)
        req = nodelocal_pb2.SetupPodRequest(
            pod=pod_pb2.Pod(metadata=meta_pb2.ObjectMeta(name=name, namespace=namespace, uid=uid)),
            netns_path=pod.netns_path,
        )
        with self.channel(node) as ch:
            resp = nodelocal_pb2_grpc.PodNetworkStub(ch).SetupPod(req, timeout=20)
        pod.ip, pod.resp = resp.ip, resp
        return pod

    def remove_pod(self, pod: Pod) -> None:
        with self.channel(pod.node) as ch:
            nodelocal_pb2_grpc.PodNetworkStub(ch).TeardownPod(
                nodelocal_pb2.TeardownPodRequest(
                    namespace=pod.namespace, name=pod.name, uid=pod.uid, netns_path=pod.netns_path
                ),
                timeout=20,
            )

    def serve_http(self, pod: Pod, body: str, port: int = 8080) -> None:
        self.lab.spawn(pod.netns, [sys.executable, "-c", HTTP_SERVER, body, str(port)])
        wait_tcp(self, pod, pod.ip, port)

    def node_probe(self, node: str, kind: str, target: str, timeout: float = 2.0) -> Any:
        """A probe from the node's own namespace."""
        with self.channel(node) as ch:
            return netdiag_pb2_grpc.NetDiagStub(ch).Probe(
                netdiag_pb2.ProbeRequest(kind=kind, target=target, timeout_seconds=timeout), timeout=timeout + 10
            )

    def probe(self, pod: Pod, kind: str, target: str, timeout: float = 2.0, dns_server: str = "") -> Any:
        with self.channel(pod.node) as ch:
            return netdiag_pb2_grpc.NetDiagStub(ch).Probe(
                netdiag_pb2.ProbeRequest(
                    namespace=pod.namespace,
                    pod=pod.name,
                    kind=kind,
                    target=target,
                    timeout_seconds=timeout,
                    dns_server=dns_server,
                ),
                timeout=timeout + 10,
            )

    def http_get(self, pod: Pod, target: str, timeout: float = 2.0) -> str:
        """GET http://target/ from inside the pod; the body's first line, or '' on failure."""
        r = self.probe(pod, "http", target, timeout)
        return r.answers[0] if r.ok and r.answers else ""

    # -- services --------------------------------------------------------------------------
    def add_service(
        self,
        name: str,
        cluster_ip: str,
        backends: list[Pod],
        port: int = 80,
        target_port: int = 8080,
        namespace: str = "default",
        node_port: int = 0,
        affinity: bool = False,
        port_name: str = "http",
    ) -> None:
        assert self.client is not None
        svc = service_pb2.Service(metadata=meta_pb2.ObjectMeta(name=name, namespace=namespace))
        svc.spec.cluster_ip = cluster_ip
        svc.spec.type = "NodePort" if node_port else "ClusterIP"
        if affinity:
            svc.spec.session_affinity = "ClientIP"
        sp = svc.spec.ports.add(name=port_name, protocol="TCP", port=port, node_port=node_port)
        sp.target_port.int_val = target_port
        self.client.create(svc)
        ep = service_pb2.Endpoints(metadata=meta_pb2.ObjectMeta(name=name, namespace=namespace))
        sub = ep.subsets.add()
        for b in backends:
            sub.addresses.add(ip=b.ip, node_name=b.node, hostname=b.name)
        sub.ports.add(name=port_name, port=target_port, protocol="TCP")
        self.client.create(ep)


def wait_tcp(c: NetCluster, src: Pod, ip: str, port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.probe(src, "tcp", f"{ip}:{port}", 1.0).ok:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{ip}:{port} not answering from {src.name}")


def wait_probe(c: NetCluster, pod: Pod, kind: str, target: str, timeout: float = 10) -> Any:
    """Repeat a probe until it succeeds; the successful response."""

    def once() -> Any:
        r = c.probe(pod, kind, target, 1.0)
        return r if r.ok else None

    return wait_until(once, timeout=timeout)


def wait_until(fn: Any, timeout: float = 10, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise TimeoutError(f"condition not met: {last!r}")


def outside_get(lab: Lab, url: str, timeout: float = 3.0) -> str:
    """GET url from the lab's outside host; the body, or '' on failure."""
    code = (
        "import sys,urllib.request\n"
        "try: print(urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).read().decode())\n"
        "except Exception as e: print('')\n"
    )
    return lab.exec(lab.outside, sys.executable, "-c", code, url, str(timeout), timeout=timeout + 10).strip()
