"""The netagent process: wires IPAM, links, the overlay, the proxy and DNS to the store.

Start-up: wait for the own Node object to have a podCIDR (and an address), set up the bridge
and the overlay device, publish the VTEP annotations on the Node, then run informers on Nodes
(overlay), Services and Endpoints (proxy and DNS). PodNetwork and NetDiag are served on
<run-dir>/netagent.sock; SetupPod answers UNAVAILABLE until the pod network is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pinnace.api import node_pb2, service_pb2
from pinnace.client import AsyncClient, Informer, errors
from pinnace.common.logging import get_logger
from services.netagent import links, metrics
from services.netagent.dns import ClusterDNS, DNSServer
from services.netagent.ipam import IPAM
from services.netagent.overlay import Backend, desired_peers, make_backend, node_ip
from services.netagent.proxy.iptables import Iptables
from services.netagent.proxy.model import service_ports
from services.netagent.proxy.rules import Options
from services.netagent.proxy.syncer import ProxySyncer

log = get_logger("netagent")

DIAG_SOCKET_ANNOTATION = "pinnace.io/netagent-socket"


@dataclass
class Config:
    node_name: str
    store: list[str]
    backend: str = "vxlan"
    run_dir: str = ""
    data_dir: str = ""
    node_ip: str = ""
    service_cidr: str = "10.96.0.0/16"
    cluster_cidr: str = "10.244.0.0/16"
    dns_listen: str = "10.96.0.10:53"
    domain: str = "cluster.local"
    bridge: str = "pn0"
    min_sync_period: float = 0.5
    iptables_mode: str = ""
    tls: Any = None

    @property
    def socket_path(self) -> str:
        return os.path.join(self.run_dir, "netagent.sock")

    @property
    def dns_ip(self) -> str:
        return self.dns_listen.rpartition(":")[0] if self.dns_listen else ""

    @property
    def dns_port(self) -> int:
        return int(self.dns_listen.rpartition(":")[2]) if self.dns_listen else 53


@dataclass
class NetAgent:
    cfg: Config
    client: AsyncClient | None = None
    ipam: IPAM | None = None
    backend: Backend | None = None
    pod_cidr: str = ""
    node_ip: str = ""
    vtep_mac: str = ""
    mtu: int = 1500
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    nodes: Informer[node_pb2.Node] | None = None
    services: Informer[service_pb2.Service] | None = None
    endpoints: Informer[service_pb2.Endpoints] | None = None
    proxy: ProxySyncer | None = None
    dns_server: DNSServer | None = None
    dns: ClusterDNS | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _overlay_wake: asyncio.Event = field(default_factory=asyncio.Event)
    setup_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    # -- start-up --------------------------------------------------------------------------
    async def start(self) -> None:
        cfg = self.cfg
        self.client = AsyncClient(endpoints=cfg.store, tls=cfg.tls)
        node = await self._wait_for_node()
        self.pod_cidr = node.spec.pod_cidr
        self.node_ip = cfg.node_ip or node_ip(node)
        self.backend = make_backend(cfg.backend)
        _, underlay_mtu = await asyncio.to_thread(links.default_underlay, self.node_ip)
        self.mtu = self.backend.mtu(underlay_mtu)
        self.ipam = IPAM(os.path.join(cfg.data_dir, "netagent", "ipam.json"), self.pod_cidr)
        await asyncio.to_thread(links.enable_forwarding)
        await asyncio.to_thread(links.ensure_bridge, cfg.bridge, self.ipam.gateway, self.ipam.prefix_length, self.mtu)
        await asyncio.to_thread(links.ensure_service_route, cfg.service_cidr, cfg.bridge)
        annotations = await asyncio.to_thread(self.backend.setup, self.pod_cidr, self.node_ip)
        self.vtep_mac = annotations.get("pinnace.io/vtep-mac", "")
        annotations[DIAG_SOCKET_ANNOTATION] = cfg.socket_path
        await self._publish(annotations)
        self.ready.set()
        log.info("pod network ready", pod_cidr=self.pod_cidr, node_ip=self.node_ip, mtu=self.mtu, backend=cfg.backend)

        self.nodes = Informer(self.client, node_pb2.Node)
        self.nodes.add_handler(
            on_add=lambda n: self._overlay_wake.set(),
            on_update=lambda o, n: self._overlay_wake.set(),
            on_delete=lambda n: self._overlay_wake.set(),
        )
        self.proxy = ProxySyncer(
            Iptables(cfg.iptables_mode),
            Options(cluster_cidr=cfg.cluster_cidr),
            min_sync_period=cfg.min_sync_period,
            skip_ips=frozenset({cfg.dns_ip}) if cfg.dns_ip else frozenset(),
        )
        self.services = Informer(self.client, service_pb2.Service)
        self.endpoints = Informer(self.client, service_pb2.Endpoints)
        for inf in (self.services, self.endpoints):
            inf.add_handler(
                on_add=lambda o: self._service_changed(o),
                on_update=lambda old, new: self._service_changed(new),
                on_delete=lambda o: self._service_changed(o),
            )
        for inf2 in (self.nodes, self.services, self.endpoints):
            await inf2.start()
        if cfg.dns_listen:
            await self._start_dns()
        for inf2 in (self.nodes, self.services, self.endpoints):
            await inf2.wait_synced()
        self._overlay_wake.set()
        self._tasks.append(asyncio.create_task(self._overlay_loop()))
        self._tasks.append(asyncio.create_task(self._gc_loop()))
        self._tasks.append(asyncio.create_task(self.proxy.run(log)))
        self.proxy.request_full_sync()

    async def _wait_for_node(self) -> node_pb2.Node:
        assert self.client is not None
        warned = False
        while True:
            try:
                node = await self.client.get(node_pb2.Node, self.cfg.node_name, namespace=None)
                if node.spec.pod_cidr and (self.cfg.node_ip or node_ip(node)):
                    return node
            except errors.NotFound:
                pass
            except errors.PinnaceError as e:
                log.debug("store not reachable yet", error=str(e))
            if not warned:
                log.info("waiting for Node with a podCIDR and an address", node=self.cfg.node_name)
                warned = True
            await asyncio.sleep(0.5)

    async def _publish(self, annotations: dict[str, str]) -> None:
        assert self.client is not None

        def fn(n: node_pb2.Node) -> None:
            for k, v in annotations.items():
                n.metadata.annotations[k] = v

        for _ in range(20):
            try:
                await self.client.mutate(node_pb2.Node, self.cfg.node_name, None, fn)
                return
            except errors.PinnaceError as e:
                log.warning("cannot annotate node yet", error=str(e))
                await asyncio.sleep(0.5)

    async def _start_dns(self) -> None:
        assert self.services is not None and self.endpoints is not None
        svc_inf, ep_inf = self.services, self.endpoints
        dns = ClusterDNS(
            lambda ns, name: svc_inf.get(f"{ns}/{name}"),
            lambda ns, name: ep_inf.get(f"{ns}/{name}"),
            self.cfg.domain,
        )
        self.dns = dns
        await asyncio.to_thread(add_local_address, self.cfg.dns_ip)
        self.dns_server = DNSServer(dns, self.cfg.dns_ip, self.cfg.dns_port)
        await self.dns_server.start()
        log.info("cluster DNS serving", listen=self.cfg.dns_listen)

    # -- reactions -------------------------------------------------------------------------
    def _service_changed(self, obj: Any) -> None:
        assert self.services is not None and self.endpoints is not None and self.proxy is not None
        if self.dns is not None:
            self.dns.invalidate()
        key = f"{obj.metadata.namespace}/{obj.metadata.name}"
        svc = self.services.get(key)
        if svc is None:
            self.proxy.delete_service(key)
            return
        self.proxy.set_service(key, service_ports(svc, self.endpoints.get(key)))

    def expected_peers(self) -> list[Any]:
        assert self.nodes is not None
        return desired_peers(self.nodes.list(), self.cfg.node_name, need_mac=self.cfg.backend == "vxlan")

    async def _overlay_loop(self) -> None:
        assert self.backend is not None
        while True:
            await self._overlay_wake.wait()
            self._overlay_wake.clear()
            peers = self.expected_peers()
            try:
                await asyncio.to_thread(self.backend.sync, peers)
                metrics.OVERLAY_PEERS.set(len(peers))
                log.debug("overlay synced", peers=[p.name for p in peers])
            except Exception as e:
                log.warning("overlay sync failed", error=str(e))
                await asyncio.sleep(1.0)
                self._overlay_wake.set()
            # Periodic re-check repairs entries removed behind our back.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._overlay_wake.wait(), timeout=30)
            self._overlay_wake.set()

    async def collect_orphans(self) -> list[str]:
        """Release addresses of pods whose network namespace is gone (a missed TeardownPod)."""
        if self.ipam is None:
            return []
        freed = []
        async with self.setup_lock:
            for al in self.ipam.allocations():
                if al.netns and not os.path.exists(al.netns):
                    await asyncio.to_thread(links.teardown_pod, al.uid, "")
                    self.ipam.release(al.uid)
                    freed.append(al.ip)
        if freed:
            log.info("released addresses of vanished pods", ips=freed)
        return freed

    async def _gc_loop(self, period: float = 60.0) -> None:
        while True:
            try:
                await self.collect_orphans()
                if self.ipam is not None:
                    metrics.PODS.set(len(self.ipam.allocations()))
            except Exception as e:
                log.warning("orphan collection failed", error=str(e))
            await asyncio.sleep(period)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for inf in (self.nodes, self.services, self.endpoints):
            if inf is not None:
                with contextlib.suppress(Exception):
                    await inf.stop()
        if self.dns_server is not None:
            await self.dns_server.stop()
        if self.client is not None:
            await self.client.close()


def add_local_address(ip: str) -> None:
    """Put ip/32 on the node's loopback, so the node answers for it (the DNS service IP)."""
    with IPRoute() as ipr:
        lo = ipr.link_lookup(ifname="lo")[0]
        have = {a.get("address") for a in ipr.get_addr(index=lo, family=2)}
        if ip not in have:
            with contextlib.suppress(NetlinkError):
                ipr.addr("add", index=lo, address=ip, prefixlen=32)


def has_local_address(ip: str) -> bool:
    with IPRoute() as ipr:
        return any(a.get("address") == ip for a in ipr.get_addr(family=2))


def remove_local_address(ip: str) -> None:
    with IPRoute() as ipr:
        lo = ipr.link_lookup(ifname="lo")[0]
        with contextlib.suppress(NetlinkError):
            ipr.addr("del", index=lo, address=ip, prefixlen=32)


def in_cidr(ip: str, cidr: str) -> bool:
    try:
        return ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(cidr, strict=False)
    except ValueError:
        return False
