"""`pinnace net diagnose [POD]`: the cluster network troubleshooting checklist, in order.

1. pods on one node reach each other      (else: bridge, veth, ARP, iptables on that node)
2. pods on different nodes reach each other (routes / FDB / neighbours against the Node objects)
3. cluster DNS answers                    (DNS address and server on each node)
4. a Service's ClusterIP answers          (each node's rules against the Endpoints)
5. a pod reaches the store
6. a pod reaches outside the cluster      (an address named with --outside; never guessed)

Each step reports passed / failed / skipped with its evidence and, when failed, the likely cause.
Probes run inside pods' network namespaces through each node's netagent (NetDiag on the
node-local socket named by the Node annotation pinnace.io/netagent-socket), so the command runs
where those sockets are reachable (the host of `pinnace up`, or the node itself).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import grpc

from pinnace.api import netdiag_pb2, netdiag_pb2_grpc, node_pb2, service_pb2
from pinnace.cli.context import client_from_args, common_parent, namespace_of

SOCKET_ANNOTATION = "pinnace.io/netagent-socket"
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass
class Step:
    number: int
    title: str
    status: str = PASSED
    evidence: list[str] = field(default_factory=list)
    cause: str = ""

    def fail(self, cause: str, *evidence: str) -> None:
        self.status = FAILED
        if cause and cause not in self.cause:
            self.cause = f"{self.cause}; {cause}" if self.cause else cause
        self.evidence.extend(evidence)

    def skip(self, why: str) -> None:
        self.status = SKIPPED
        self.evidence.append(why)


@dataclass
class PodRef:
    namespace: str
    name: str
    ip: str
    node: str

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name} ({self.ip} on {self.node})"


class NodeAgents:
    """NetDiag clients per node, from the Node annotations."""

    def __init__(self, nodes: list[node_pb2.Node], timeout: float = 5.0) -> None:
        self.nodes = {n.metadata.name: n for n in nodes}
        self.timeout = timeout
        self.states: dict[str, netdiag_pb2.NetState] = {}
        self.errors: dict[str, str] = {}
        self._channels: dict[str, grpc.Channel] = {}

    def stub(self, node: str) -> netdiag_pb2_grpc.NetDiagStub | None:
        if node not in self._channels:
            n = self.nodes.get(node)
            path = n.metadata.annotations.get(SOCKET_ANNOTATION, "") if n else ""
            if not path or not os.path.exists(path):
                self.errors[node] = f"netagent socket {path or '(not annotated)'} not reachable from here"
                return None
            self._channels[node] = grpc.insecure_channel(f"unix:{path}")
        return netdiag_pb2_grpc.NetDiagStub(self._channels[node])

    def state(self, node: str, services: Iterable[str] = ()) -> netdiag_pb2.NetState | None:
        stub = self.stub(node)
        if stub is None:
            return None
        try:
            st: netdiag_pb2.NetState = stub.State(
                netdiag_pb2.NetStateRequest(services=list(services)), timeout=self.timeout * 4
            )
        except grpc.RpcError as e:
            self.errors[node] = f"netagent on {node}: {e.code().name} {e.details()}"
            return None
        return st

    def probe(self, pod: PodRef | None, node: str, kind: str, target: str, timeout: float = 2.0) -> tuple[bool, str]:
        stub = self.stub(node)
        if stub is None:
            return False, self.errors.get(node, "netagent unreachable")
        req = netdiag_pb2.ProbeRequest(kind=kind, target=target, timeout_seconds=timeout)
        if pod is not None:
            req.namespace, req.pod = pod.namespace, pod.name
        try:
            r = stub.Probe(req, timeout=timeout + self.timeout)
        except grpc.RpcError as e:
            return False, f"probe via netagent on {node} failed: {e.code().name} {e.details()}"
        return bool(r.ok), str(r.detail)

    def close(self) -> None:
        for ch in self._channels.values():
            ch.close()


def _pods(states: dict[str, netdiag_pb2.NetState]) -> list[PodRef]:
    out = [
        PodRef(p.namespace, p.name, p.ip, node)
        for node, st in sorted(states.items())
        for p in st.pods
        if p.link_present
    ]
    return sorted(out, key=lambda p: (p.node, p.namespace, p.name))


def _pick_source(pods: list[PodRef], wanted: str, namespace: str) -> PodRef | None:
    if wanted:
        ns, _, name = wanted.rpartition("/")
        ns = ns or namespace
        return next((p for p in pods if p.name == name and p.namespace == ns), None)
    by_node: dict[str, list[PodRef]] = {}
    for p in pods:
        by_node.setdefault(p.node, []).append(p)
    multi = [ps for ps in by_node.values() if len(ps) >= 2]
    return (multi[0] if multi else pods)[0] if pods else None


def _overlay_diff(st: netdiag_pb2.NetState) -> list[str]:
    have = {(e.kind, e.key): e.value for e in st.overlay}
    out = []
    for e in st.expected_overlay:
        got = have.get((e.kind, e.key))
        if got is None:
            out.append(f"{st.node_name}: missing {e.kind} {e.key} -> {e.value}")
        elif got != e.value:
            out.append(f"{st.node_name}: {e.kind} {e.key} -> {got}, expected {e.value}")
    want = {(e.kind, e.key) for e in st.expected_overlay}
    for (kind, key), value in have.items():
        if (kind, key) not in want:
            out.append(f"{st.node_name}: stale {kind} {key} -> {value} (no such Node)")
    return out


def diagnose(
    client: Any,
    pod: str = "",
    namespace: str = "default",
    outside: str = "",
    store_address: str = "",
    domain: str = "cluster.local",
) -> list[Step]:
    """Run the checklist; `client` is a synchronous pinnace Client."""
    nodes = client.list_all(node_pb2.Node).items
    services = [s for s in client.list_all(service_pb2.Service).items]
    endpoints = {f"{e.metadata.namespace}/{e.metadata.name}": e for e in client.list_all(service_pb2.Endpoints).items}
    agents = NodeAgents(nodes)
    try:
        return _diagnose(agents, nodes, services, endpoints, pod, namespace, outside, store_address, domain)
    finally:
        agents.close()


def _backed(
    services: list[service_pb2.Service], endpoints: dict[str, service_pb2.Endpoints], dns_ips: set[str]
) -> list:
    out = []
    for s in services:
        key = f"{s.metadata.namespace}/{s.metadata.name}"
        ip = s.spec.cluster_ip
        ep = endpoints.get(key)
        if not ip or ip == "None" or ip in dns_ips or not s.spec.ports or ep is None:
            continue
        if any(sub.addresses for sub in ep.subsets):
            out.append(s)
    return sorted(out, key=lambda s: (s.metadata.namespace != "default", s.metadata.namespace, s.metadata.name))


def _diagnose(
    agents: NodeAgents,
    nodes: list[node_pb2.Node],
    services: list[service_pb2.Service],
    endpoints: dict[str, service_pb2.Endpoints],
    pod: str,
    namespace: str,
    outside: str,
    store_address: str,
    domain: str,
) -> list[Step]:
    steps = [
        Step(1, "pods on the same node reach each other"),
        Step(2, "pods on different nodes reach each other"),
        Step(3, "cluster DNS answers"),
        Step(4, "a Service's ClusterIP answers"),
        Step(5, "a pod reaches the store"),
        Step(6, "a pod reaches outside the cluster"),
    ]
    states: dict[str, netdiag_pb2.NetState] = {}
    for n in nodes:
        st = agents.state(n.metadata.name)
        if st is not None:
            states[n.metadata.name] = st
    dns_ips = {st.dns_ip for st in states.values() if st.dns_ip}
    backed = _backed(services, endpoints, dns_ips)[:3]
    svc_keys = [f"{s.metadata.namespace}/{s.metadata.name}" for s in backed]
    if svc_keys:
        for name in list(states):
            st = agents.state(name, svc_keys)
            if st is not None:
                states[name] = st
    unreachable = [f"{n}: {e}" for n, e in agents.errors.items()]
    pods = _pods(states)
    src = _pick_source(pods, pod, namespace)
    if src is None:
        why = f"pod {pod} not found on any node's netagent" if pod else "no pods with a network on any node"
        for s in steps:
            s.skip(why)
            s.evidence.extend(unreachable)
        if pod:
            steps[0].fail("the pod has no network set up (SetupPod not called or failed)", *unreachable)
        return steps
    one_per_node: dict[str, PodRef] = {src.node: src}
    for p in pods:
        one_per_node.setdefault(p.node, p)

    # 1. same node
    s1 = steps[0]
    peers = [p for p in pods if p.node == src.node and p.name != src.name]
    if not peers:
        s1.skip(f"{src.ref} is the only pod on {src.node}")
    else:
        ok, detail = agents.probe(src, src.node, "ping", peers[0].ip)
        s1.evidence.append(f"{src.name} -> {peers[0].ref}: {detail}")
        st = states.get(src.node)
        if not ok:
            s1.fail(f"bridge / veth / ARP / iptables on {src.node}")
            if st is not None:
                s1.evidence.append(f"{src.node}: ip_forward={'on' if st.ip_forward else 'OFF'}")

    # 2. across nodes
    s2 = steps[1]
    remote = [p for n, p in sorted(one_per_node.items()) if n != src.node]
    for p in remote:
        ok, detail = agents.probe(src, src.node, "ping", p.ip)
        s2.evidence.append(f"{src.name} -> {p.ref}: {detail}")
        if not ok:
            s2.fail(f"overlay between {src.node} and {p.node}")
    for name, st in sorted(states.items()):
        diff = _overlay_diff(st)
        if diff:
            s2.fail(f"overlay entries on {name} do not match the Node objects", *diff)
        else:
            s2.evidence.append(f"{name}: {len(st.overlay)} overlay entries match the Node objects ({st.backend})")
    if unreachable:
        s2.fail("netagent not reachable on some nodes", *unreachable)
    if not remote and s2.status == PASSED and len(states) < 2:
        s2.skip("only one node has pods")

    # 3. DNS
    s3 = steps[2]
    st_src = states[src.node]
    name = (
        f"{backed[0].metadata.name}.{backed[0].metadata.namespace}.svc.{domain}"
        if backed
        else f"kubernetes.default.svc.{domain}"
    )
    want_ip = backed[0].spec.cluster_ip if backed else ""
    ok, detail = agents.probe(src, src.node, "dns", name)
    s3.evidence.append(f"{src.name} asks {st_src.dns_ip}: {detail}")
    answered = ok or "NXDOMAIN" in detail
    if not answered:
        s3.fail(f"cluster DNS at {st_src.dns_ip} not answering on {src.node}")
        if not st_src.dns_address_present:
            s3.evidence.append(f"{src.node}: DNS address {st_src.dns_ip} is missing from the node")
        if not st_src.dns_serving:
            s3.evidence.append(f"{src.node}: the netagent's DNS server is not running")
    elif want_ip and want_ip not in detail:
        s3.fail("DNS answers, but not with the Service's ClusterIP (stale Service cache in the netagent?)")

    # 4. ClusterIP
    s4 = steps[3]
    if not backed:
        s4.skip("no Service with a ClusterIP and ready endpoints")
    mismatch = False
    for svc in backed:
        key = f"{svc.metadata.namespace}/{svc.metadata.name}"
        port = svc.spec.ports[0].port
        for node, p in sorted(one_per_node.items()):
            ok, detail = agents.probe(p, node, "tcp", f"{svc.spec.cluster_ip}:{port}")
            s4.evidence.append(f"{p.name}@{node} -> {key} {svc.spec.cluster_ip}:{port}: {detail}")
            if not ok:
                s4.fail(f"Service {key} does not answer from {node}")
        for node, st in sorted(states.items()):
            for r in st.services:
                if r.service != key:
                    continue
                problems = []
                if not r.chain_present:
                    problems.append(f"chain {r.chain} missing")
                if not r.jump_present:
                    problems.append("no jump from PINNACE-SERVICES")
                if sorted(r.rule_endpoints) != sorted(r.expected_endpoints):
                    problems.append(
                        f"rules DNAT to [{', '.join(sorted(r.rule_endpoints))}], "
                        f"Endpoints say [{', '.join(sorted(r.expected_endpoints))}]"
                    )
                if problems:
                    mismatch = True
                    s4.fail(
                        f"iptables rules on {node} do not match the Endpoints of {key}",
                        f"{node}: {key}:{r.port}: " + "; ".join(problems),
                    )
                if st.proxy_last_error:
                    s4.evidence.append(f"{node}: last proxy sync error: {st.proxy_last_error}")
    if s4.status == FAILED and not mismatch:
        s4.cause += " (the rules match the Endpoints: are the endpoints listening on the target port?)"

    # 5. store
    s5 = steps[4]
    targets = [store_address] if store_address else [_from_pod(e, st_src.node_ip) for e in st_src.store_endpoints]
    reached = False
    for t in targets:
        ok, detail = agents.probe(src, src.node, "tcp", t)
        s5.evidence.append(f"{src.name} -> store {t}: {detail}")
        reached = reached or ok
    if not targets:
        s5.skip("no store address known (give --store-address)")
    elif not reached:
        s5.fail("no path from pods to the store (routing/egress on the node, or the store is down)")

    # 6. outside
    s6 = steps[5]
    if not outside:
        s6.skip("no outside address named (give --outside IP[:PORT])")
    else:
        kind = "tcp" if ":" in outside else "ping"
        ok, detail = agents.probe(src, src.node, kind, outside)
        s6.evidence.append(f"{src.name} -> {outside}: {detail}")
        if not ok:
            s6.fail(f"no egress from {src.node}: masquerade (PINNACE-POSTROUTING) or the node's routes")
    return steps


def _from_pod(endpoint: str, node_ip: str) -> str:
    """A store endpoint as a pod sees it: loopback on the node means the node's own address."""
    host, _, port = endpoint.rpartition(":")
    if host in ("127.0.0.1", "localhost", "::1") and node_ip:
        return f"{node_ip}:{port}"
    return endpoint


def render(steps: list[Step]) -> str:
    lines = []
    for s in steps:
        lines.append(f"[{s.number}] {s.title:<42} {s.status.upper()}")
        for e in s.evidence:
            lines.append(f"      {e}")
        if s.status == FAILED:
            lines.append(f"      likely cause: {s.cause}")
    failed = [s for s in steps if s.status == FAILED]
    if failed:
        lines.append(f"first failing step: [{failed[0].number}] {failed[0].title}")
    else:
        lines.append("all checks passed" + (" (some skipped)" if any(s.status == SKIPPED for s in steps) else ""))
    return "\n".join(lines)


def cmd_diagnose(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        steps = diagnose(
            client,
            pod=args.pod or "",
            namespace=namespace_of(args) or "default",
            outside=args.outside,
            store_address=args.store_address,
        )
    if args.output == "json":
        print(json.dumps([asdict(s) for s in steps], indent=2))
    else:
        print(render(steps))
    return 1 if any(s.status == FAILED for s in steps) else 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    net = subparsers.add_parser("net", parents=[common_parent()], help="cluster network tools")
    sub = net.add_subparsers(dest="net_command", required=True)
    d = sub.add_parser("diagnose", parents=[common_parent()], help="run the network troubleshooting checklist")
    d.add_argument("pod", nargs="?", default="", help="source pod ([NAMESPACE/]NAME); default: any pod")
    d.add_argument("--outside", default="", help="an address outside the cluster: IP (ping) or IP:PORT (TCP)")
    d.add_argument("--store-address", default="", help="the store as pods should reach it (HOST:PORT)")
    d.add_argument("-o", "--output", default="text", choices=["text", "json"])
    d.set_defaults(func=cmd_diagnose)
