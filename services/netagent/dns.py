"""Cluster DNS (dnslib): answers for <svc>.<ns>.svc.<domain> from the Services and Endpoints.

- A: the ClusterIP; for headless services the ready endpoint addresses; also
  <hostname>.<svc>.<ns>.svc.<domain> for endpoints with a hostname.
- SRV: _<port-name>._<proto>.<svc>.<ns>.svc.<domain> -> the service name (or each endpoint
  of a headless service) and the port.
- A known name asked for another type: NOERROR with no answers; anything else: NXDOMAIN.
Served over UDP (a thread of its own) and TCP (asyncio) on the DNS service address; answers are
cached by query until a Service or Endpoints object changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable

from dnslib import QTYPE, RCODE, RR, SRV, A, DNSRecord

from pinnace.api import service_pb2
from services.netagent.metrics import DNS_QUERIES

ServiceLookup = Callable[[str, str], "service_pb2.Service | None"]
EndpointsLookup = Callable[[str, str], "service_pb2.Endpoints | None"]
TTL = 5


class ClusterDNS:
    """Pure resolver over lookup callables (namespace, name) -> object or None."""

    def __init__(self, services: ServiceLookup, endpoints: EndpointsLookup, domain: str = "cluster.local") -> None:
        self.services = services
        self.endpoints = endpoints
        self.domain = domain.strip(".").lower()
        # Packed answers by query bytes after the ID; emptied whenever a Service/Endpoints changes.
        self._cache: dict[bytes, bytes] = {}
        self.cache_size = 10000

    def invalidate(self) -> None:
        self._cache = {}

    def _ready_addresses(self, ns: str, name: str) -> list[service_pb2.EndpointAddress]:
        ep = self.endpoints(ns, name)
        if ep is None:
            return []
        return [a for s in ep.subsets for a in s.addresses]

    def resolve(self, request: DNSRecord) -> DNSRecord:
        reply = request.reply(aa=1, ra=0)
        q = request.q
        qname = str(q.qname).rstrip(".").lower()
        suffix = ".svc." + self.domain
        if not qname.endswith(suffix):
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        labels = qname[: -len(suffix)].split(".")
        found = False
        if len(labels) == 2:
            found = self._service(reply, q.qtype, labels[0], labels[1], str(q.qname))
        elif len(labels) == 3 and not labels[0].startswith("_"):
            found = self._endpoint_host(reply, q.qtype, labels[0], labels[1], labels[2], str(q.qname))
        elif len(labels) == 4 and labels[0].startswith("_") and labels[1].startswith("_"):
            found = self._srv(reply, q.qtype, labels[0][1:], labels[1][1:], labels[2], labels[3], str(q.qname))
        if not found:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply

    def _service(self, reply: DNSRecord, qtype: int, name: str, ns: str, qname: str) -> bool:
        svc = self.services(ns, name)
        if svc is None or svc.spec.type == "ExternalName":
            return False
        if qtype not in (QTYPE.A, QTYPE.ANY):
            return True
        ip = svc.spec.cluster_ip
        if ip and ip != "None":
            reply.add_answer(RR(qname, QTYPE.A, rdata=A(ip), ttl=TTL))
        else:
            for a in self._ready_addresses(ns, name):
                reply.add_answer(RR(qname, QTYPE.A, rdata=A(a.ip), ttl=TTL))
        return True

    def _endpoint_host(self, reply: DNSRecord, qtype: int, host: str, name: str, ns: str, qname: str) -> bool:
        if self.services(ns, name) is None:
            return False
        for a in self._ready_addresses(ns, name):
            if a.hostname.lower() == host or a.ip.replace(".", "-") == host:
                if qtype in (QTYPE.A, QTYPE.ANY):
                    reply.add_answer(RR(qname, QTYPE.A, rdata=A(a.ip), ttl=TTL))
                return True
        return False

    def _srv(self, reply: DNSRecord, qtype: int, port_name: str, proto: str, name: str, ns: str, qname: str) -> bool:
        svc = self.services(ns, name)
        if svc is None:
            return False
        port = next(
            (p for p in svc.spec.ports if p.name and p.name == port_name and (p.protocol or "TCP").lower() == proto),
            None,
        )
        if port is None:
            return False
        if qtype not in (QTYPE.SRV, QTYPE.ANY):
            return True
        svc_fqdn = f"{name}.{ns}.svc.{self.domain}."
        ip = svc.spec.cluster_ip
        if ip and ip != "None":
            reply.add_answer(RR(qname, QTYPE.SRV, rdata=SRV(0, 100, port.port, svc_fqdn), ttl=TTL))
            reply.add_ar(RR(svc_fqdn, QTYPE.A, rdata=A(ip), ttl=TTL))
            return True
        ep = self.endpoints(ns, name)
        for s in ep.subsets if ep else []:
            eport = next((p.port for p in s.ports if p.name == port_name), port.port)
            for a in s.addresses:
                host = (a.hostname or a.ip.replace(".", "-")) + "." + svc_fqdn
                reply.add_answer(RR(qname, QTYPE.SRV, rdata=SRV(0, 100, eport, host), ttl=TTL))
                reply.add_ar(RR(host, QTYPE.A, rdata=A(a.ip), ttl=TTL))
        return True

    def handle(self, data: bytes) -> bytes | None:
        data = bytes(data)
        cache = self._cache
        hit = cache.get(data[2:])
        if hit is not None:
            return data[:2] + hit
        try:
            request = DNSRecord.parse(data)
        except Exception:
            return None
        try:
            reply = self.resolve(request)
        except Exception:
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
            return bytes(reply.pack())
        out = bytes(reply.pack())
        if len(cache) >= self.cache_size:
            cache.clear()
        cache[data[2:]] = out[2:]
        return out


def _udp_loop(sock: socket.socket, dns: ClusterDNS) -> None:
    """Serve UDP from a thread of its own, so a busy event loop never delays answers."""
    while True:
        try:
            data, addr = sock.recvfrom(4096)
        except OSError:
            return  # closed
        out = dns.handle(data)
        DNS_QUERIES.inc()
        if out is not None:
            with contextlib.suppress(OSError):
                sock.sendto(out, addr)


class DNSServer:
    """UDP + TCP listeners for a ClusterDNS on host:port."""

    def __init__(self, dns: ClusterDNS, host: str, port: int = 53) -> None:
        self.dns = dns
        self.host = host
        self.port = port
        self._udp: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._tcp: asyncio.Server | None = None

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((self.host, self.port))
        self._udp = sock
        self._thread = threading.Thread(target=_udp_loop, args=(sock, self.dns), name="dns-udp", daemon=True)
        self._thread.start()
        self._tcp = await asyncio.start_server(self._tcp_conn, self.host, self.port)

    async def _tcp_conn(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while True:
                hdr = await r.readexactly(2)
                data = await r.readexactly(struct.unpack("!H", hdr)[0])
                out = self.dns.handle(data)
                if out is None:
                    break
                w.write(struct.pack("!H", len(out)) + out)
                await w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(Exception):
                w.close()

    async def stop(self) -> None:
        if self._udp is not None:
            with contextlib.suppress(OSError):
                self._udp.shutdown(socket.SHUT_RDWR)
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()
            self._tcp = None


def resolv_conf(namespace: str, nameserver: str, domain: str = "cluster.local") -> str:
    """The pod's /etc/resolv.conf, as the kubelet writes it for dnsPolicy ClusterFirst."""
    return f"nameserver {nameserver}\nsearch {namespace}.svc.{domain} svc.{domain} {domain}\noptions ndots:5\n"
