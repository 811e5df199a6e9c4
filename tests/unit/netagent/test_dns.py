"""Cluster DNS answers: A for ClusterIP and headless, SRV for named ports, NXDOMAIN otherwise."""

from __future__ import annotations

from dnslib import QTYPE, RCODE, DNSRecord

from pinnace.api import meta_pb2, service_pb2
from services.netagent.dns import ClusterDNS, resolv_conf


def _dns():
    web = service_pb2.Service(metadata=meta_pb2.ObjectMeta(name="web", namespace="default"))
    web.spec.cluster_ip = "10.96.0.20"
    web.spec.ports.add(name="http", port=80, protocol="TCP")
    db = service_pb2.Service(metadata=meta_pb2.ObjectMeta(name="db", namespace="prod"))
    db.spec.cluster_ip = "None"
    db.spec.ports.add(name="pg", port=5432, protocol="TCP")
    ep = service_pb2.Endpoints(metadata=meta_pb2.ObjectMeta(name="db", namespace="prod"))
    sub = ep.subsets.add()
    sub.addresses.add(ip="10.244.1.5", hostname="db-0")
    sub.addresses.add(ip="10.244.2.5", hostname="db-1")
    sub.ports.add(name="pg", port=5432)
    svcs = {("default", "web"): web, ("prod", "db"): db}
    eps = {("prod", "db"): ep}
    return ClusterDNS(lambda ns, n: svcs.get((ns, n)), lambda ns, n: eps.get((ns, n)))


def ask(dns, name, qtype="A"):
    return DNSRecord.parse(dns.handle(DNSRecord.question(name, qtype).pack()))


def test_cluster_ip():
    r = ask(_dns(), "web.default.svc.cluster.local")
    assert r.header.rcode == RCODE.NOERROR and [str(a.rdata) for a in r.rr] == ["10.96.0.20"]
    assert r.header.aa == 1


def test_headless_and_hostnames():
    d = _dns()
    assert sorted(str(a.rdata) for a in ask(d, "db.prod.svc.cluster.local").rr) == ["10.244.1.5", "10.244.2.5"]
    assert [str(a.rdata) for a in ask(d, "db-1.db.prod.svc.cluster.local").rr] == ["10.244.2.5"]


def test_srv():
    d = _dns()
    r = ask(d, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert r.rr[0].rtype == QTYPE.SRV and r.rr[0].rdata.port == 80
    assert str(r.rr[0].rdata.target) == "web.default.svc.cluster.local."
    r = ask(d, "_pg._tcp.db.prod.svc.cluster.local", "SRV")
    assert sorted(str(a.rdata.target) for a in r.rr) == [
        "db-0.db.prod.svc.cluster.local.",
        "db-1.db.prod.svc.cluster.local.",
    ]


def test_nxdomain_and_nodata():
    d = _dns()
    assert ask(d, "nope.default.svc.cluster.local").header.rcode == RCODE.NXDOMAIN
    assert ask(d, "example.com").header.rcode == RCODE.NXDOMAIN
    assert ask(d, "_nope._tcp.web.default.svc.cluster.local", "SRV").header.rcode == RCODE.NXDOMAIN
    r = ask(d, "web.default.svc.cluster.local", "AAAA")
    assert r.header.rcode == RCODE.NOERROR and not r.rr


def test_resolv_conf():
    assert resolv_conf("prod", "10.96.0.10") == (
        "nameserver 10.96.0.10\nsearch prod.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
    )
