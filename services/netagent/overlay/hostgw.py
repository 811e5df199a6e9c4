"""host-gw backend: a plain route to each remote podCIDR via that node's address (same L2 only)."""

from __future__ import annotations

from pyroute2 import IPRoute

from services.netagent.overlay import Peer
from services.netagent.overlay.routes import sync_routes


class HostGW:
    name = "host-gw"

    def mtu(self, underlay_mtu: int) -> int:
        return underlay_mtu

    def setup(self, pod_cidr: str, node_ip: str) -> dict[str, str]:
        return {}

    def sync(self, peers: list[Peer]) -> None:
        with IPRoute() as ipr:
            sync_routes(ipr, {p.pod_cidr: (p.node_ip, None, False) for p in peers})

    def cleanup(self) -> None:
        with IPRoute() as ipr:
            sync_routes(ipr, {})
