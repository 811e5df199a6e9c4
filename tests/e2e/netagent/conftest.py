"""Fixtures: a three-node vxlan lab with pods and a running netagent per node (root only).

The store is a real one (tests/support/store.py); PINNACE_NET_STORE=fake uses the SDK's FakeStore.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.netagent.harness import FakeStoreThread, NetCluster, Pod
from tests.support.netlab import Lab, have_tools

REASON = have_tools()
pytestmark = pytest.mark.root


def lab_cluster(backend: str, nodes: int) -> Iterator[NetCluster]:
    if REASON:
        pytest.skip(REASON)
    tmp = tempfile.mkdtemp(prefix="pinnace-netagent-")
    store: Any
    if os.environ.get("PINNACE_NET_STORE") == "fake":
        store = FakeStoreThread()
        port = store.port
    else:
        from tests.support.store import start_store

        store = start_store(Path(tmp) / "store")
        port = int(store.endpoints[0].rsplit(":", 1)[1])
    try:
        with Lab(nodes_count=nodes) as lab:
            c = NetCluster(lab, port, tmp, backend=backend)
            try:
                c.register_nodes()
                for n in lab.nodes:
                    c.start_agent(n.name)
                yield c
            finally:
                c.close()
    finally:
        store.stop()
        if os.environ.get("PINNACE_KEEP_LOGS") is None:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def vxlan_cluster() -> Iterator[NetCluster]:
    yield from lab_cluster("vxlan", 3)


@pytest.fixture(scope="module")
def pods(vxlan_cluster: NetCluster) -> dict[str, Pod]:
    c = vxlan_cluster
    out = {
        "a1": c.add_pod("node1", "a1"),
        "a2": c.add_pod("node1", "a2"),
        "b1": c.add_pod("node2", "b1"),
        "c1": c.add_pod("node3", "c1"),
    }
    for name in ("a2", "b1", "c1"):
        c.serve_http(out[name], name)
    return out
