"""Plans the ClusterIP / NodePort part of a Service write: which allocation keys to claim or free.

The plan becomes compares (the key must be free) and puts/deletes in the same transaction as
the Service itself, so two concurrent creates can never get the same address.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc

from pinnace.api.object_pb2 import Object
from services.store import encoding as enc
from services.store.registry.allocators import ClusterIPAllocator, NodePortAllocator
from services.store.registry.errors import StoreError, invalid

NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


@dataclass
class AllocPlan:
    compares: list[enc.Compare] = field(default_factory=list)
    ops: list[enc.Op] = field(default_factory=list)
    # Allocation key -> True when the user asked for that exact value (a conflict is an error,
    # not a reason to pick another one).
    requested: dict[str, bool] = field(default_factory=dict)
    picked_ips: list[str] = field(default_factory=list)
    picked_ports: list[str] = field(default_factory=list)


class ServiceAllocator:
    """ClusterIP + NodePort allocation for Service creates, updates and deletes."""

    def __init__(self, ips: ClusterIPAllocator, ports: NodePortAllocator) -> None:
        self.ips = ips
        self.ports = ports

    def keys_of(self, obj: Object | None) -> set[str]:
        if obj is None or obj.WhichOneof("kind") != "service":
            return set()
        s = obj.service.spec
        keys = set()
        if s.cluster_ip and s.cluster_ip != "None":
            keys.add(self.ips.key(s.cluster_ip))
        for p in s.ports:
            if p.node_port:
                keys.add(self.ports.key(str(p.node_port)))
        return keys

    def release(self, plan: AllocPlan) -> None:
        for ip in plan.picked_ips:
            self.ips.release_pending(ip)
        for port in plan.picked_ports:
            self.ports.release_pending(port)

    def plan(self, new: Object, old: Object | None, owner_key: str) -> AllocPlan:
        """Fill in clusterIP / nodePorts on new (in place) and return the allocation changes."""
        plan = AllocPlan()
        s = new.service.spec
        old_keys = self.keys_of(old)
        try:
            if s.type == "ExternalName":
                s.cluster_ip = ""
                del s.cluster_ips[:]
            elif s.cluster_ip == "None":
                del s.cluster_ips[:]
                s.cluster_ips.append("None")
            else:
                if s.cluster_ip:
                    ip_key = self.ips.key(s.cluster_ip)
                    if ip_key not in old_keys:
                        if not self.ips.contains(s.cluster_ip):
                            raise invalid(
                                "spec.clusterIP",
                                f"{s.cluster_ip} is not in the service range {self.ips.network}",
                            )
                        if self.ips.taken(s.cluster_ip):
                            raise _taken("spec.clusterIP", s.cluster_ip)
                        plan.requested[ip_key] = True
                else:
                    ip = self.ips.pick()
                    if ip is None:
                        raise StoreError(
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"spec.clusterIP: no free address left in the service range {self.ips.network}",
                        )
                    plan.picked_ips.append(ip)
                    s.cluster_ip = ip
                del s.cluster_ips[:]
                s.cluster_ips.append(s.cluster_ip)
            self._plan_ports(new, old_keys, plan)
        except BaseException:
            self.release(plan)
            raise
        new_keys = self.keys_of(new)
        for k in sorted(new_keys - old_keys):
            plan.compares.append(enc.Compare(k, enc.CMP_NOT_EXISTS))
            plan.ops.append(enc.Op(enc.OP_PUT, k, owner_key.encode()))
        for k in sorted(old_keys - new_keys):
            plan.ops.append(enc.Op(enc.OP_DELETE, k))
        return plan

    def _plan_ports(self, new: Object, old_keys: set[str], plan: AllocPlan) -> None:
        s = new.service.spec
        if s.type not in NODE_PORT_TYPES:
            for p in s.ports:
                p.node_port = 0
            return
        seen: set[int] = set()
        for i, p in enumerate(s.ports):
            if p.node_port:
                if p.node_port in seen:
                    raise invalid(f"spec.ports[{i}].nodePort", f"Duplicate value: {p.node_port}")
                key = self.ports.key(str(p.node_port))
                if key not in old_keys:
                    if not self.ports.contains(p.node_port):
                        raise invalid(
                            f"spec.ports[{i}].nodePort",
                            f"Invalid value: {p.node_port}: provided port is not in the valid range. "
                            f"The range of valid ports is {self.ports.lo}-{self.ports.hi}",
                        )
                    if self.ports.taken(str(p.node_port)):
                        raise _taken(f"spec.ports[{i}].nodePort", str(p.node_port))
                    plan.requested[key] = True
            else:
                port = self.ports.pick()
                if port is None:
                    raise StoreError(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"spec.ports[{i}].nodePort: no free port left in {self.ports.lo}-{self.ports.hi}",
                    )
                plan.picked_ports.append(str(port))
                p.node_port = port
            seen.add(p.node_port)


def _taken(field_path: str, value: str) -> StoreError:
    return StoreError(
        grpc.StatusCode.ALREADY_EXISTS, f"{field_path}: Invalid value: {value!r}: provided {value} is already allocated"
    )


def taken_error(field_path: str, value: str) -> StoreError:
    return _taken(field_path, value)
