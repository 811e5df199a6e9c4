"""gRPC servicers on the node-local socket: PodNetwork (SetupPod/TeardownPod) and NetDiag."""

from __future__ import annotations

import asyncio
import os

import grpc

from pinnace.api import netdiag_pb2, netdiag_pb2_grpc, nodelocal_pb2, nodelocal_pb2_grpc
from pinnace.common.logging import get_logger
from services.netagent import links, probes
from services.netagent.agent import NetAgent, has_local_address
from services.netagent.dns import resolv_conf
from services.netagent.ipam import IPAMError
from services.netagent.proxy import rules
from services.netagent.proxy.model import service_ports

log = get_logger("netagent.rpc")


def default_netns(uid: str) -> str:
    return f"/run/netns/pn-{uid.replace('-', '')[:12]}"


class PodNetwork(nodelocal_pb2_grpc.PodNetworkServicer):
    def __init__(self, agent: NetAgent) -> None:
        self.agent = agent

    async def SetupPod(
        self, request: nodelocal_pb2.SetupPodRequest, context: grpc.aio.ServicerContext
    ) -> nodelocal_pb2.SetupPodResponse:
        a = self.agent
        if not a.ready.is_set() or a.ipam is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "pod network not ready (waiting for the node's podCIDR)")
        assert a.ipam is not None
        meta = request.pod.metadata
        if not meta.uid:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "pod.metadata.uid is required")
        netns = request.netns_path or default_netns(meta.uid)
        if not os.path.exists(netns):
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"network namespace {netns} does not exist")
        async with a.setup_lock:
            try:
                alloc = a.ipam.allocate(meta.uid, meta.namespace, meta.name, netns)
            except IPAMError as e:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(e))
                raise
            try:
                await asyncio.to_thread(
                    links.setup_pod,
                    netns,
                    meta.uid,
                    a.cfg.bridge,
                    alloc.ip,
                    a.ipam.prefix_length,
                    a.ipam.gateway,
                    a.mtu,
                )
            except Exception as e:
                log.warning("setup failed", pod=f"{meta.namespace}/{meta.name}", error=str(e))
                await context.abort(grpc.StatusCode.INTERNAL, f"wiring pod network: {e}")
        log.info("pod network set up", pod=f"{meta.namespace}/{meta.name}", ip=alloc.ip)
        return nodelocal_pb2.SetupPodResponse(
            ip=alloc.ip,
            prefix_length=a.ipam.prefix_length,
            gateway=a.ipam.gateway,
            mtu=a.mtu,
            interface_name=links.POD_IFNAME,
            resolv_conf=resolv_conf(meta.namespace or "default", a.cfg.dns_ip or "10.96.0.10", a.cfg.domain),
        )

    async def TeardownPod(
        self, request: nodelocal_pb2.TeardownPodRequest, context: grpc.aio.ServicerContext
    ) -> nodelocal_pb2.TeardownPodResponse:
        a = self.agent
        if not request.uid:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "uid is required")
        async with a.setup_lock:
            await asyncio.to_thread(links.teardown_pod, request.uid, request.netns_path)
            if a.ipam is not None:
                ip = a.ipam.release(request.uid)
                if ip:
                    log.info("pod network torn down", pod=f"{request.namespace}/{request.name}", ip=ip)
        return nodelocal_pb2.TeardownPodResponse()


class NetDiag(netdiag_pb2_grpc.NetDiagServicer):
    def __init__(self, agent: NetAgent) -> None:
        self.agent = agent

    def _pod_netns(self, namespace: str, name: str) -> str | None:
        if self.agent.ipam is None:
            return None
        for al in self.agent.ipam.allocations():
            if al.namespace == namespace and al.name == name:
                return al.netns or default_netns(al.uid)
        return None

    async def Probe(
        self, request: netdiag_pb2.ProbeRequest, context: grpc.aio.ServicerContext
    ) -> netdiag_pb2.ProbeResponse:
        netns = ""
        if request.pod:
            found = self._pod_netns(request.namespace or "default", request.pod)
            if found is None:
                await context.abort(
                    grpc.StatusCode.NOT_FOUND, f"pod {request.namespace}/{request.pod} is not on this node"
                )
            netns = found or ""
        timeout = request.timeout_seconds or 2.0
        kind = request.kind
        if kind == "ping":
            r = await asyncio.to_thread(probes.ping, netns, request.target, timeout)
        elif kind == "tcp":
            host, port = probes.split_hostport(request.target)
            r = await asyncio.to_thread(probes.tcp, netns, host, port, timeout)
        elif kind == "http":
            host, port = probes.split_hostport(request.target, 80)
            r = await asyncio.to_thread(probes.http, netns, host, port, "/", timeout)
        elif kind == "dns":
            server = request.dns_server or self.agent.cfg.dns_ip
            r = await asyncio.to_thread(probes.dns, netns, server, request.target, timeout)
        else:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown probe kind {kind!r}")
            raise AssertionError
        return netdiag_pb2.ProbeResponse(ok=r.ok, detail=r.detail, seconds=r.seconds, answers=r.answers)

    async def State(
        self, request: netdiag_pb2.NetStateRequest, context: grpc.aio.ServicerContext
    ) -> netdiag_pb2.NetState:
        a = self.agent
        st = netdiag_pb2.NetState(
            node_name=a.cfg.node_name,
            backend=a.cfg.backend,
            pod_cidr=a.pod_cidr,
            node_ip=a.node_ip,
            vtep_mac=a.vtep_mac,
            dns_ip=a.cfg.dns_ip,
            dns_serving=a.dns_server is not None,
            store_endpoints=a.cfg.store,
        )
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            st.ip_forward = f.read().strip() == "1"
        if a.cfg.dns_ip:
            st.dns_address_present = await asyncio.to_thread(has_local_address, a.cfg.dns_ip)
        if a.proxy is not None:
            st.proxy_last_error = a.proxy.stats.last_error
        if a.backend is not None and a.nodes is not None:
            kernel = await asyncio.to_thread(overlay_state, a)
            st.overlay.extend(kernel)
            for p in a.expected_peers():
                if a.cfg.backend == "vxlan":
                    st.expected_overlay.add(kind="route", key=p.pod_cidr, value=p.vtep_ip)
                    st.expected_overlay.add(kind="neighbour", key=p.vtep_ip, value=p.vtep_mac)
                    st.expected_overlay.add(kind="fdb", key=p.vtep_mac, value=p.node_ip)
                else:
                    st.expected_overlay.add(kind="route", key=p.pod_cidr, value=p.node_ip)
        if a.ipam is not None:
            present = set(await asyncio.to_thread(links.pod_links))
            for al in a.ipam.allocations():
                st.pods.add(
                    namespace=al.namespace,
                    name=al.name,
                    uid=al.uid,
                    ip=al.ip,
                    link_present=links.host_ifname(al.uid) in present,
                )
        if request.services and a.services is not None and a.endpoints is not None and a.proxy is not None:
            ipt = a.proxy.ipt
            services_rules = await asyncio.to_thread(_safe_rules, ipt, rules.SERVICES)
            for key in request.services:
                svc = a.services.get(key)
                if svc is None:
                    continue
                for sp in service_ports(svc, a.endpoints.get(key)):
                    chain = rules.svc_chain(sp)
                    entry = st.services.add(
                        service=key,
                        port=sp.port_name or str(sp.port),
                        cluster_ip=sp.cluster_ip,
                        chain=chain,
                        expected_endpoints=[f"{e.ip}:{e.port}" for e in sp.endpoints],
                    )
                    entry.jump_present = any(r.endswith(f"-j {chain}") for r in services_rules or [])
                    chain_rules = await asyncio.to_thread(_safe_rules, ipt, chain)
                    entry.chain_present = chain_rules is not None and chain != ""
                    for r in chain_rules or []:
                        target = r.rsplit("-j ", 1)[-1]
                        if target.startswith("PINNACE-SEP-"):
                            for sr in await asyncio.to_thread(_safe_rules, ipt, target) or []:
                                if "--to-destination" in sr:
                                    dest = sr.split("--to-destination", 1)[1].split()[0]
                                    if dest not in entry.rule_endpoints:
                                        entry.rule_endpoints.append(dest)
        return st


def _safe_rules(ipt: object, chain: str) -> list[str] | None:
    from services.netagent.proxy.iptables import Iptables, IptablesError

    assert isinstance(ipt, Iptables)
    try:
        return ipt.chain_rules(chain)
    except IptablesError:
        return None


def overlay_state(a: NetAgent) -> list[netdiag_pb2.OverlayEntry]:
    from pyroute2 import IPRoute

    from services.netagent.overlay import ROUTE_PROTO
    from services.netagent.overlay.vxlan import VXLAN

    out: list[netdiag_pb2.OverlayEntry] = []
    if isinstance(a.backend, VXLAN):
        s = a.backend.state()
        out += [netdiag_pb2.OverlayEntry(kind="route", key=k, value=v) for k, v in s["routes"]]
        out += [netdiag_pb2.OverlayEntry(kind="neighbour", key=k, value=v) for k, v in s["neigh"]]
        out += [netdiag_pb2.OverlayEntry(kind="fdb", key=k, value=v) for k, v in s["fdb"]]
        return out
    with IPRoute() as ipr:
        for r in ipr.get_routes(family=2, table=254):
            if r["proto"] == ROUTE_PROTO:
                out.append(
                    netdiag_pb2.OverlayEntry(
                        kind="route", key=f"{r.get('RTA_DST')}/{r['dst_len']}", value=str(r.get("RTA_GATEWAY"))
                    )
                )
    return out
