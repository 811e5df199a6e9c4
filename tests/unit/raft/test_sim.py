"""Seeded random simulations of 3- and 5-node clusters (see sim.py). A failure names its seed;
rerun one with `PINNACE_RAFT_SIM_SEED=<seed> PINNACE_RAFT_SIM_NODES=<n> pytest tests/unit/raft`.
PINNACE_RAFT_SIM_RUNS scales the number of runs (default keeps the suite well under a minute)."""

from __future__ import annotations

import os

import pytest

from tests.unit.raft.sim import run_seed

RUNS = int(os.environ.get("PINNACE_RAFT_SIM_RUNS", "2000"))
ONE_SEED = os.environ.get("PINNACE_RAFT_SIM_SEED")


@pytest.mark.parametrize("nodes", [3, 5])
@pytest.mark.parametrize("shard", range(4))
def test_random_runs(nodes: int, shard: int) -> None:
    if ONE_SEED is not None:
        if shard == 0 and nodes == int(os.environ.get("PINNACE_RAFT_SIM_NODES", nodes)):
            run_seed(int(ONE_SEED), nodes)
        return
    per_shard = max(1, RUNS // 8)
    base = nodes * 1_000_000 + shard * per_shard
    for seed in range(base, base + per_shard):
        run_seed(seed, nodes)
