"""Node IPAM: each node gets a distinct pod CIDR (spec.podCIDR and podCIDRs) from the cluster CIDR.

Allocation state is derived from the nodes themselves (what they already carry) plus what this process
assigned and has not seen echoed yet, so a restart or a new leader picks up where the last one left off.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from pinnace.api import node_pb2
from services.controllers.base import Controller


class CidrSet:
    """Subnets of size `mask` inside `cluster`, by index."""

    def __init__(self, cluster: str, mask: int) -> None:
        self.net = ipaddress.ip_network(cluster, strict=False)
        if mask < self.net.prefixlen:
            raise ValueError(f"node CIDR mask /{mask} is larger than the cluster CIDR {cluster}")
        self.mask = mask
        self.size = 2 ** (mask - self.net.prefixlen)
        self._step = 2 ** (self.net.max_prefixlen - mask)

    def cidr(self, index: int) -> str:
        base = int(self.net.network_address) + index * self._step
        return f"{ipaddress.ip_address(base)}/{self.mask}"

    def index_of(self, cidr: str) -> int | None:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return None
        if net.prefixlen != self.mask or not net.subnet_of(self.net):  # type: ignore[arg-type]
            return None
        return (int(net.network_address) - int(self.net.network_address)) // self._step

    def first_free(self, used: set[int]) -> int | None:
        for i in range(self.size):
            if i not in used:
                return i
        return None


class NodeIpamController(Controller):
    name = "nodeipam"
    workers = 1  # allocations are serialized: one worker, no double assignment

    def setup(self) -> None:
        self.cidrs = CidrSet(self.options.cluster_cidr, self.options.node_cidr_mask)
        self.nodes = self.informers.get(node_pb2.Node)
        self.assigned: dict[str, int] = {}
        self.nodes.add_handler(on_add=self._node, on_update=lambda _o, n: self._node(n), on_delete=self._gone)

    def keys(self) -> Iterable[Any]:
        return [n.metadata.name for n in self.nodes.list() if not n.spec.pod_cidr]

    def _node(self, node: node_pb2.Node) -> None:
        if not node.spec.pod_cidr:
            self.enqueue(node.metadata.name)

    def _gone(self, node: node_pb2.Node) -> None:
        self.assigned.pop(node.metadata.name, None)

    def used(self) -> set[int]:
        out = set()
        for n in self.nodes.list():
            for c in [n.spec.pod_cidr, *n.spec.pod_cidrs]:
                if c:
                    i = self.cidrs.index_of(c)
                    if i is not None:
                        out.add(i)
        names = set(self.nodes.keys())
        self.assigned = {k: v for k, v in self.assigned.items() if k in names}
        out.update(self.assigned.values())
        return out

    async def reconcile(self, name: str) -> float | None:
        node = self.nodes.get(name)
        if node is None or node.spec.pod_cidr:
            self.assigned.pop(name, None)
            return None
        if name in self.assigned:
            index: int | None = self.assigned[name]
        else:
            index = self.cidrs.first_free(self.used())
        if index is None:
            self.recorder.emit(node, "Warning", "CIDRNotAvailable", f"no pod CIDR left in {self.cidrs.net} for {name}")
            return 30.0
        cidr = self.cidrs.cidr(index)
        new = node_pb2.Node()
        new.CopyFrom(node)
        new.spec.pod_cidr = cidr
        del new.spec.pod_cidrs[:]
        new.spec.pod_cidrs.append(cidr)
        self.assigned[name] = index
        await self.client.update(new)
        self.recorder.emit(node, "Normal", "CIDRAssigned", f"assigned pod CIDR {cidr} to {name}")
        return None
