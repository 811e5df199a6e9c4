"""`pinnace why-pending` against a real store: every node, every failed filter, every score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pinnace.api import node_pb2
from pinnace.cli.main import run
from pinnace.client import Client
from tests.integration.scheduler.support import make_node, make_pod


def test_why_pending_lists_nodes_filters_and_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support.store import start_store

    with start_store(tmp_path) as cluster:
        c = Client(cluster.endpoints)
        try:
            for name, cpu, taint in (("small", "1", False), ("tainted", "8", True), ("big", "8", False)):
                n = make_node(name, cpu=cpu)
                if taint:
                    n.spec.taints.add(key="dedicated", value="db", effect="NoSchedule")
                created = c.create(node_pb2.Node(metadata=n.metadata, spec=n.spec))
                created.status.CopyFrom(n.status)
                c.update_status(created)
            c.create(make_pod("web", cpu="2"))
        finally:
            c.close()
        store = ",".join(cluster.endpoints)
        assert run(["why-pending", "web", "--store", store, "--insecure", "-o", "json"]) == 0
        report = json.loads(capsys.readouterr().out)
        by = {n["node"]: n for n in report["nodes"]}
        assert by["small"]["failed"] == {"NodeResourcesFit": ["Insufficient cpu"]}
        assert by["tainted"]["failed"] == {"TaintToleration": ["node(s) had untolerated taint {dedicated: db}"]}
        assert by["big"]["feasible"] and "NodeResourcesLeastAllocated" in by["big"]["scores"]
        assert report["summary"] == "would fit; best node now: big"
        assert run(["why-pending", "web", "--store", store, "--insecure"]) == 0
        text = capsys.readouterr().out
        assert "Insufficient cpu" in text and "big" in text
