"""VXLAN backend, as flannel's: one device (VNI 1, UDP 8472, no learning); per remote node a route
to its podCIDR via its VTEP address (onlink), a permanent neighbour entry (VTEP IP -> VTEP MAC)
and an FDB entry (VTEP MAC -> node IP). The local VTEP MAC goes into a Node annotation.
"""

from __future__ import annotations

import contextlib
import ipaddress

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from services.netagent.links import default_underlay
from services.netagent.overlay import BACKEND_ANNOTATION, NODE_IP_ANNOTATION, VTEP_MAC_ANNOTATION, Peer
from services.netagent.overlay.routes import sync_routes

DEVICE = "pinnace.1"
VNI = 1
PORT = 8472
OVERHEAD = 50
NUD_PERMANENT = 0x80
NTF_SELF = 0x02


class VXLAN:
    name = "vxlan"

    def __init__(self, device: str = DEVICE) -> None:
        self.device = device

    def mtu(self, underlay_mtu: int) -> int:
        return underlay_mtu - OVERHEAD

    def _index(self, ipr: IPRoute) -> int | None:
        found = ipr.link_lookup(ifname=self.device)
        return found[0] if found else None

    def setup(self, pod_cidr: str, node_ip: str) -> dict[str, str]:
        underlay, umtu = default_underlay(node_ip)
        vtep_ip = str(ipaddress.IPv4Network(pod_cidr, strict=False).network_address)
        with IPRoute() as ipr:
            idx = self._index(ipr)
            if idx is not None:
                info = ipr.get_links(idx)[0].get(("IFLA_LINKINFO", "IFLA_INFO_DATA"))
                local = info.get("IFLA_VXLAN_LOCAL") if info else None
                if local != node_ip:
                    ipr.link("del", index=idx)
                    idx = None
            if idx is None:
                uidx = ipr.link_lookup(ifname=underlay)[0]
                ipr.link(
                    "add",
                    ifname=self.device,
                    kind="vxlan",
                    vxlan_id=VNI,
                    vxlan_port=PORT,
                    vxlan_local=node_ip,
                    vxlan_link=uidx,
                    vxlan_learning=0,
                )
                idx = self._index(ipr)
                assert idx is not None
            have = {(a.get("address"), a["prefixlen"]) for a in ipr.get_addr(index=idx, family=2)}
            for addr, plen in have - {(vtep_ip, 32)}:
                ipr.addr("del", index=idx, address=addr, prefixlen=plen)
            if (vtep_ip, 32) not in have:
                ipr.addr("add", index=idx, address=vtep_ip, prefixlen=32)
            ipr.link("set", index=idx, state="up", mtu=self.mtu(umtu))
            mac = str(ipr.get_links(idx)[0].get("address"))
        return {VTEP_MAC_ANNOTATION: mac, NODE_IP_ANNOTATION: node_ip, BACKEND_ANNOTATION: "vxlan"}

    def sync(self, peers: list[Peer]) -> None:
        with IPRoute() as ipr:
            idx = self._index(ipr)
            if idx is None:
                raise RuntimeError(f"{self.device} is missing; setup first")
            sync_routes(ipr, {p.pod_cidr: (p.vtep_ip, idx, True) for p in peers})
            want_neigh = {p.vtep_ip: p.vtep_mac for p in peers}
            for n in ipr.get_neighbours(ifindex=idx, family=2):
                dst, mac = n.get("NDA_DST"), n.get("NDA_LLADDR")
                if want_neigh.get(dst) != mac:
                    with contextlib.suppress(NetlinkError):
                        ipr.neigh("del", dst=dst, lladdr=mac, ifindex=idx)
            for ip, mac in want_neigh.items():
                ipr.neigh("replace", dst=ip, lladdr=mac, ifindex=idx, state=NUD_PERMANENT)
            want_fdb = {p.vtep_mac: p.node_ip for p in peers}
            for f in ipr.fdb("dump", ifindex=idx):
                if f["ifindex"] != idx:
                    continue
                mac, dst = f.get("NDA_LLADDR"), f.get("NDA_DST")
                if want_fdb.get(mac) != dst:
                    with contextlib.suppress(NetlinkError):
                        ipr.fdb("del", ifindex=idx, lladdr=mac, dst=dst)
            for mac, dst in want_fdb.items():
                ipr.fdb("replace", ifindex=idx, lladdr=mac, dst=dst, state=NUD_PERMANENT, flags=NTF_SELF)

    def cleanup(self) -> None:
        with IPRoute() as ipr:
            sync_routes(ipr, {})
            idx = self._index(ipr)
            if idx is not None:
                ipr.link("del", index=idx)

    def state(self) -> dict[str, list[tuple[str, str]]]:
        """What the kernel holds now (for diagnose): routes, neighbours and FDB entries."""
        out: dict[str, list[tuple[str, str]]] = {"routes": [], "neigh": [], "fdb": []}
        with IPRoute() as ipr:
            idx = self._index(ipr)
            if idx is None:
                return out
            for r in ipr.get_routes(family=2, table=254, oif=idx):
                out["routes"].append((f"{r.get('RTA_DST')}/{r['dst_len']}", str(r.get("RTA_GATEWAY"))))
            for n in ipr.get_neighbours(ifindex=idx, family=2):
                out["neigh"].append((str(n.get("NDA_DST")), str(n.get("NDA_LLADDR"))))
            for f in ipr.fdb("dump", ifindex=idx):
                if f["ifindex"] == idx and f.get("NDA_DST"):
                    out["fdb"].append((str(f.get("NDA_LLADDR")), str(f.get("NDA_DST"))))
        return out
