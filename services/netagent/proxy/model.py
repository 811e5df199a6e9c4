"""Service ports and their endpoints, derived from Service and Endpoints objects (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pinnace.api import service_pb2

DEFAULT_AFFINITY_TIMEOUT = 10800


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    node_name: str = ""


@dataclass(frozen=True)
class ServicePort:
    """One port of one Service, with the endpoints it balances over."""

    namespace: str
    name: str
    port_name: str
    protocol: str  # tcp, udp, sctp (lower case, as iptables wants it)
    cluster_ip: str
    port: int
    node_port: int = 0
    affinity_timeout: int = 0  # > 0: ClientIP session affinity
    endpoints: tuple[Endpoint, ...] = field(default=())

    @property
    def key(self) -> str:
        """kube-proxy's ServicePortName: ns/name:port (port name may be empty)."""
        return f"{self.namespace}/{self.name}:{self.port_name}"


def is_proxied(svc: service_pb2.Service) -> bool:
    ip = svc.spec.cluster_ip
    return bool(ip) and ip != "None" and svc.spec.type != "ExternalName"


def _endpoint_port(ep: service_pb2.Endpoints | None, sp: service_pb2.ServicePort, n_ports: int) -> list[Endpoint]:
    if ep is None:
        return []
    out: list[Endpoint] = []
    proto = (sp.protocol or "TCP").upper()
    for subset in ep.subsets:
        port = 0
        for p in subset.ports:
            if (p.protocol or "TCP").upper() != proto:
                continue
            if p.name == sp.name or (n_ports == 1 and len(subset.ports) == 1):
                port = p.port
                break
        if not port:
            continue
        for a in subset.addresses:
            out.append(Endpoint(ip=a.ip, port=port, node_name=a.node_name if a.HasField("node_name") else ""))
    # Stable order: rules (and the chains' contents) must not change when nothing changed.
    return sorted(set(out), key=lambda e: (tuple(int(x) for x in e.ip.split(".")), e.port))


def service_ports(svc: service_pb2.Service, ep: service_pb2.Endpoints | None) -> list[ServicePort]:
    """The proxied ports of a Service, each with its ready endpoints."""
    if not is_proxied(svc):
        return []
    timeout = 0
    if svc.spec.session_affinity == "ClientIP":
        cfg = svc.spec.session_affinity_config.client_ip
        timeout = cfg.timeout_seconds if cfg.HasField("timeout_seconds") else DEFAULT_AFFINITY_TIMEOUT
    out: list[ServicePort] = []
    for sp in svc.spec.ports:
        if sp.port <= 0:
            continue
        node_port = sp.node_port if svc.spec.type in ("NodePort", "LoadBalancer") else 0
        out.append(
            ServicePort(
                namespace=svc.metadata.namespace,
                name=svc.metadata.name,
                port_name=sp.name,
                protocol=(sp.protocol or "TCP").lower(),
                cluster_ip=svc.spec.cluster_ip,
                port=sp.port,
                node_port=node_port,
                affinity_timeout=timeout,
                endpoints=tuple(_endpoint_port(ep, sp, len(svc.spec.ports))),
            )
        )
    return out
