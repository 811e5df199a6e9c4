"""The host-gw backend: a route per remote podCIDR via the node's address; removed with the node."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pinnace.api import node_pb2
from tests.e2e.netagent.conftest import lab_cluster
from tests.e2e.netagent.harness import NetCluster, wait_until

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def hostgw() -> Iterator[NetCluster]:
    yield from lab_cluster("host-gw", 3)


def test_hostgw_cross_node_and_removal(hostgw: NetCluster) -> None:
    c = hostgw
    a = c.add_pod("node1", "a")
    b = c.add_pod("node2", "b")
    d = c.add_pod("node3", "d")
    assert a.resp is not None and a.resp.mtu == 1500
    c.serve_http(b, "b")
    assert c.probe(a, "ping", b.ip).ok
    assert c.probe(a, "ping", d.ip).ok
    assert c.http_get(a, f"{b.ip}:8080") == f"b {a.ip}"
    routes = {(e.key, e.value) for e in c.state("node1").overlay}
    assert routes == {("10.244.2.0/24", "192.168.250.12"), ("10.244.3.0/24", "192.168.250.13")}
    assert c.client is not None
    c.client.delete(node_pb2.Node, "node3", namespace=None)
    wait_until(lambda: {e.key for e in c.state("node1").overlay} == {"10.244.2.0/24"}, timeout=10)
    assert not c.probe(a, "ping", d.ip, timeout=0.6).ok
