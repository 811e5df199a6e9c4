"""Kernel plumbing for pods (pyroute2): the node bridge and one veth pair per pod.

All functions are synchronous and idempotent; callers run them in a worker thread. They act
on the network namespace this process runs in (the node's) and, for the pod side, on the
namespace file given by path (e.g. /run/netns/pn-<uid>).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

POD_IFNAME = "eth0"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
ENOENT = 2
EEXIST = 17


@dataclass(frozen=True)
class PodLink:
    host_ifname: str
    ip: str
    prefix_length: int
    gateway: str
    mtu: int


def host_ifname(uid: str) -> str:
    """The node-side veth name for a pod: 'pnv' + 11 hex digits of the uid's hash (<= 15 chars)."""
    return "pnv" + hashlib.sha256(uid.encode()).hexdigest()[:11]


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def in_netns(path: str) -> Iterator[None]:
    """Run the body with the calling thread in the network namespace at path.

    setns() moves only this thread, and sockets keep the namespace they were created in; no
    fork (pyroute2's netns= forks, which gRPC processes must not do).
    """
    home = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    try:
        target = os.open(path, os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def _lookup(ipr: IPRoute, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def write_sysctl(path: str, value: str) -> None:
    with contextlib.suppress(OSError), open(path, "w") as f:
        f.write(value)


def enable_forwarding() -> None:
    """Routing between pods and nodes, and bridged pod traffic through iptables (for services)."""
    write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
    write_sysctl("/proc/sys/net/bridge/bridge-nf-call-iptables", "1")


def ensure_bridge(name: str, gateway: str, prefix_length: int, mtu: int) -> None:
    """The node's pod bridge with the gateway address, up, with the given MTU."""
    with IPRoute() as ipr:
        idx = _lookup(ipr, name)
        if idx is None:
            with contextlib.suppress(NetlinkError):
                ipr.link("add", ifname=name, kind="bridge")
            idx = _lookup(ipr, name)
            assert idx is not None
        have = {(a.get("address"), a["prefixlen"]) for a in ipr.get_addr(index=idx, family=2)}
        for addr, plen in have:
            if (addr, plen) != (gateway, prefix_length):
                ipr.addr("del", index=idx, address=addr, prefixlen=plen)
        if (gateway, prefix_length) not in have:
            ipr.addr("add", index=idx, address=gateway, prefixlen=prefix_length)
        ipr.link("set", index=idx, state="up", mtu=mtu)


def ensure_service_route(service_cidr: str, bridge: str) -> None:
    """A route for the service range onto the pod bridge, so that traffic the node itself sends to a
    ClusterIP has a route to leave by (the nat OUTPUT chain then rewrites it to an endpoint), also on
    nodes without a default route."""
    net, _, plen = service_cidr.partition("/")
    with IPRoute() as ipr:
        idx = _lookup(ipr, bridge)
        if idx is None:
            return
        ipr.route("replace", dst=net, dst_len=int(plen or 32), oif=idx)


def setup_pod(netns_path: str, uid: str, bridge: str, ip: str, prefix_length: int, gateway: str, mtu: int) -> PodLink:
    """Wire the pod: a veth pair, eth0 inside the pod with its IP, default route via the bridge."""
    host = host_ifname(uid)
    tmp = "pnt" + host[3:]
    with IPRoute() as ipr:
        br = _lookup(ipr, bridge)
        if br is None:
            raise RuntimeError(f"bridge {bridge} is missing")
        idx = _lookup(ipr, host)
        if idx is not None and not _pod_side_ok(netns_path, ip, prefix_length, gateway):
            ipr.link("del", index=idx)
            idx = None
        if idx is None:
            stale = _lookup(ipr, tmp)
            if stale is not None:
                ipr.link("del", index=stale)
            ipr.link("add", ifname=host, kind="veth", peer={"ifname": tmp})
            peer = _lookup(ipr, tmp)
            assert peer is not None
            fd = os.open(netns_path, os.O_RDONLY)
            try:
                ipr.link("set", index=peer, net_ns_fd=fd)
            finally:
                os.close(fd)
            idx = _lookup(ipr, host)
            assert idx is not None
            _configure_pod_side(netns_path, tmp, ip, prefix_length, gateway, mtu)
            # A new veth has a new MAC: forget what the node knew for this IP (an earlier pod's, or
            # this pod's previous veth), or the node keeps sending to the old MAC until the entry
            # goes stale and is probed again — seconds in which the node cannot reach the pod.
            with contextlib.suppress(NetlinkError):
                ipr.neigh("del", dst=ip, ifindex=br)
        ipr.link("set", index=idx, master=br, mtu=mtu, state="up")
        with contextlib.suppress(NetlinkError):
            ipr.link("set", index=idx, kind="bridge_slave", IFLA_BRPORT_MODE=1)  # hairpin
    return PodLink(host_ifname=host, ip=ip, prefix_length=prefix_length, gateway=gateway, mtu=mtu)


def _pod_side_ok(netns_path: str, ip: str, prefix_length: int, gateway: str) -> bool:
    if not os.path.exists(netns_path):
        return False
    with in_netns(netns_path), IPRoute() as p:
        idx = _lookup(p, POD_IFNAME)
        if idx is None:
            return False
        addrs = {(a.get("address"), a["prefixlen"]) for a in p.get_addr(index=idx, family=2)}
        if (ip, prefix_length) not in addrs:
            return False
        routes = p.get_routes(family=2, dst_len=0, table=254)
        return any(r.get("gateway") == gateway for r in routes)


def _configure_pod_side(netns_path: str, tmp: str, ip: str, prefix_length: int, gateway: str, mtu: int) -> None:
    with in_netns(netns_path), IPRoute() as p:
        old = _lookup(p, POD_IFNAME)
        if old is not None:
            p.link("del", index=old)
        i = _lookup(p, tmp)
        assert i is not None
        p.link("set", index=i, ifname=POD_IFNAME, mtu=mtu)
        p.addr("add", index=i, address=ip, prefixlen=prefix_length)
        p.link("set", index=i, state="up")
        lo = _lookup(p, "lo")
        if lo is not None:
            p.link("set", index=lo, state="up")
        p.route("replace", dst="0.0.0.0/0", gateway=gateway, oif=i)


def teardown_pod(uid: str, netns_path: str = "") -> None:
    """Remove the pod's veth pair (deleting one end removes both); fine if already gone."""
    with IPRoute() as ipr:
        idx = _lookup(ipr, host_ifname(uid))
        if idx is not None:
            with contextlib.suppress(NetlinkError):
                ipr.link("del", index=idx)
    if netns_path and os.path.exists(netns_path):
        with contextlib.suppress(Exception), in_netns(netns_path), IPRoute() as p:
            i = _lookup(p, POD_IFNAME)
            if i is not None:
                p.link("del", index=i)


def link_mtu(ifname: str) -> int | None:
    with IPRoute() as ipr:
        idx = _lookup(ipr, ifname)
        if idx is None:
            return None
        return int(ipr.get_links(idx)[0].get("mtu"))


def default_underlay(node_ip: str) -> tuple[str, int]:
    """The interface carrying node_ip and its MTU (the VXLAN device's underlay)."""
    with IPRoute() as ipr:
        for a in ipr.get_addr(family=2):
            if a.get("address") == node_ip:
                idx = a["index"]
                link = ipr.get_links(idx)[0]
                return str(link.get("ifname")), int(link.get("mtu"))
    raise RuntimeError(f"no interface has address {node_ip}")


def pod_links() -> list[str]:
    """Names of the node-side pod veths present now."""
    with IPRoute() as ipr:
        return [str(link.get("ifname")) for link in ipr.get_links() if str(link.get("ifname", "")).startswith("pnv")]
