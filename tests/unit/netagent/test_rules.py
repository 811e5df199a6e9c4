"""Proxy model and iptables rendering: kube-proxy layout, probabilities, affinity, diffs."""

from __future__ import annotations

from pinnace.api import meta_pb2, service_pb2
from services.netagent.proxy import rules
from services.netagent.proxy.model import Endpoint, ServicePort, service_ports


def _svc(name="web", ip="10.96.0.20", affinity=False, node_port=0, headless=False):
    s = service_pb2.Service(metadata=meta_pb2.ObjectMeta(name=name, namespace="default"))
    s.spec.cluster_ip = "None" if headless else ip
    s.spec.type = "NodePort" if node_port else "ClusterIP"
    if affinity:
        s.spec.session_affinity = "ClientIP"
    s.spec.ports.add(name="http", port=80, node_port=node_port, protocol="TCP")
    return s


def _eps(name="web", ips=("10.244.1.2", "10.244.2.2", "10.244.3.2")):
    e = service_pb2.Endpoints(metadata=meta_pb2.ObjectMeta(name=name, namespace="default"))
    sub = e.subsets.add()
    for ip in ips:
        sub.addresses.add(ip=ip)
    sub.ports.add(name="http", port=8080, protocol="TCP")
    return e


def test_service_ports_from_objects():
    ports = service_ports(_svc(), _eps())
    assert len(ports) == 1
    sp = ports[0]
    assert sp.key == "default/web:http" and sp.protocol == "tcp" and sp.cluster_ip == "10.96.0.20"
    assert [(e.ip, e.port) for e in sp.endpoints] == [("10.244.1.2", 8080), ("10.244.2.2", 8080), ("10.244.3.2", 8080)]
    assert service_ports(_svc(headless=True), _eps()) == []
    assert service_ports(_svc(), None)[0].endpoints == ()


def test_layout_and_probabilities():
    sp = service_ports(_svc(node_port=30080), _eps())[0]
    rs = rules.build([sp], rules.Options())
    svc = rules.svc_chain(sp)
    assert len(svc) <= 28 and svc.startswith("PINNACE-SVC-")
    assert any(f"-j {svc}" in r and "--dport 80" in r for r in rs[rules.SERVICES])
    assert rs[rules.SERVICES][-1].endswith(f"-j {rules.NODEPORTS}")
    probs = [r.split("--probability ")[1].split()[0] for r in rs[svc] if "statistic" in r]
    assert [round(float(p), 4) for p in probs] == [0.3333, 0.5]
    assert rs[svc][-1].startswith(f"-A {svc} -j PINNACE-SEP-")
    seps = [c for c in rs if c.startswith("PINNACE-SEP-")]
    assert len(seps) == 3
    dnat = [r for c in seps for r in rs[c] if "DNAT" in r]
    assert sorted(r.split("--to-destination ")[1] for r in dnat) == [
        "10.244.1.2:8080",
        "10.244.2.2:8080",
        "10.244.3.2:8080",
    ]
    assert any("--dport 30080" in r for r in rs[rules.NODEPORTS])
    ext = rules.ext_chain(sp)
    assert rs[ext] == [f"-A {ext} -j {rules.MARK_MASQ}", f"-A {ext} -j {svc}"]


def test_affinity_uses_recent():
    sp = service_ports(_svc(affinity=True), _eps())[0]
    rs = rules.build([sp], rules.Options())
    svc = rules.svc_chain(sp)
    assert sum("--rcheck --seconds 10800 --reap" in r for r in rs[svc]) == 3
    assert all(any("--set" in r for r in rs[c]) for c in rs if c.startswith("PINNACE-SEP-"))


def test_no_endpoints_no_jump():
    sp = ServicePort("default", "x", "", "tcp", "10.96.0.9", 80)
    rs = rules.build([sp], rules.Options())
    assert len(rs[rules.SERVICES]) == 1  # only the nodeports jump


def test_changed_chains_only_the_service():
    a = ServicePort("default", "a", "", "tcp", "10.96.0.1", 80, endpoints=(Endpoint("10.244.1.2", 80),))
    b = ServicePort("default", "b", "", "tcp", "10.96.0.2", 80, endpoints=(Endpoint("10.244.1.3", 80),))
    old = rules.build([a, b], rules.Options())
    b2 = ServicePort("default", "b", "", "tcp", "10.96.0.2", 80, endpoints=(Endpoint("10.244.1.4", 80),))
    new = rules.build([a, b2], rules.Options())
    write, delete = rules.changed_chains(old, new)
    assert rules.svc_chain(b) in write and rules.svc_chain(a) not in write
    assert rules.SERVICES not in write
    assert delete == [rules.sep_chain(b, "10.244.1.3", 80)]
    payload = rules.restore_payload(new, write, delete)
    assert payload.startswith("*nat\n") and payload.endswith("COMMIT\n")
    assert f"-X {delete[0]}" in payload
