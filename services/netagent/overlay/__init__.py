"""Overlay backends: how pods on one node reach pods on the others.

`desired_peers` turns Node objects into the peers a backend programs; a backend reconciles the
kernel state (routes, neighbours, FDB) to exactly that set, so a node that goes away is removed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol

from pinnace.api import node_pb2

VTEP_MAC_ANNOTATION = "pinnace.io/vtep-mac"
NODE_IP_ANNOTATION = "pinnace.io/public-ip"
BACKEND_ANNOTATION = "pinnace.io/backend-type"
# Routes this agent owns carry this protocol number, so it can find (and remove) them.
ROUTE_PROTO = 165


@dataclass(frozen=True)
class Peer:
    """A remote node as the overlay needs it."""

    name: str
    pod_cidr: str
    node_ip: str
    vtep_mac: str = ""

    @property
    def vtep_ip(self) -> str:
        """flannel's convention: the podCIDR's network address is the node's VTEP address."""
        return str(ipaddress.IPv4Network(self.pod_cidr, strict=False).network_address)


def node_ip(node: node_pb2.Node) -> str:
    ann = node.metadata.annotations.get(NODE_IP_ANNOTATION, "")
    if ann:
        return ann
    for kind in ("InternalIP", "ExternalIP"):
        for a in node.status.addresses:
            if a.type == kind and a.address:
                return a.address
    return ""


def desired_peers(nodes: list[node_pb2.Node], self_name: str, need_mac: bool) -> list[Peer]:
    """Remote nodes with a podCIDR and an address (and, for vxlan, a VTEP MAC); sorted by name."""
    peers: list[Peer] = []
    for n in nodes:
        if n.metadata.name == self_name or not n.spec.pod_cidr or n.metadata.HasField("deletion_timestamp"):
            continue
        ip = node_ip(n)
        mac = n.metadata.annotations.get(VTEP_MAC_ANNOTATION, "")
        if not ip or (need_mac and not mac):
            continue
        peers.append(Peer(name=n.metadata.name, pod_cidr=n.spec.pod_cidr, node_ip=ip, vtep_mac=mac))
    return sorted(peers, key=lambda p: p.name)


class Backend(Protocol):
    name: str

    def mtu(self, underlay_mtu: int) -> int: ...

    def setup(self, pod_cidr: str, node_ip: str) -> dict[str, str]:
        """Create the local device(s); returns annotations to publish on the own Node."""
        ...

    def sync(self, peers: list[Peer]) -> None:
        """Program exactly these peers; remove anything else this backend put there."""
        ...

    def cleanup(self) -> None: ...


def make_backend(kind: str) -> Backend:
    from services.netagent.overlay.hostgw import HostGW
    from services.netagent.overlay.vxlan import VXLAN

    if kind == "vxlan":
        return VXLAN()
    if kind in ("host-gw", "hostgw"):
        return HostGW()
    raise ValueError(f"unknown backend {kind!r} (vxlan or host-gw)")
