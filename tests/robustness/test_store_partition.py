"""Partitions: a 3-replica store in network namespaces (tests/robustness/netchaos.py), one replica
cut off with iptables inside its own namespace (the leader half of the time), mixed with kill -9
and SIGSTOP, while clients write, CAS and watch; then the same checks as test_store_chaos.

Root only (namespaces, iptables inside them); nothing is added to the host's namespace.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
from pathlib import Path

import pytest

from tests.robustness.chaos import Chaos
from tests.support.netlab import Lab, have_tools

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(bool(have_tools()), reason=f"partition test {have_tools()}"),
    pytest.mark.skipif(shutil.which("iptables") is None, reason="needs iptables (inside the lab namespaces)"),
]


@pytest.mark.timeout(240)
def test_store_survives_partitions(tmp_path: Path) -> None:
    from tests.robustness.netchaos import start_netns_store

    seed = int(os.environ.get("PINNACE_CHAOS_SEED", random.randrange(1 << 30)))
    seconds = float(os.environ.get("PINNACE_CHAOS_SECONDS", "30"))
    with Lab(nodes_count=3) as lab:
        cluster = start_netns_store(tmp_path, lab)
        try:
            chaos = Chaos(cluster, seconds, seed, fault_kinds=("partition", "kill9", "partition", "sigstop"))
            chaos.dump_dir = tmp_path
            report = asyncio.run(chaos.run())
        finally:
            cluster.stop()
        # the rules went away with heal(); the namespaces (and anything left) go with the lab
        for node in lab.nodes:
            rules = lab.exec(node.netns, "iptables", "-S")
            assert "DROP" not in rules, rules
    summary = report.summary()
    print(f"seed={seed}", json.dumps(summary))
    assert not report.violations, f"seed={seed}: {summary}"
    assert report.faults["partition"] >= 1, summary
    assert summary["operations_checked"] > 100, summary
