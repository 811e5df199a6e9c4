"""Random faults against a real 3-replica store while clients write, CAS and watch (tests/robustness/chaos.py).

Kept to about a minute; `python bench/robustness.py --minutes N` is the long run. The seed is
printed and can be fixed with PINNACE_CHAOS_SEED to replay a run's fault choices.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from tests.robustness.chaos import FAULT_KINDS, run_chaos


@pytest.mark.timeout(240)
def test_store_survives_random_faults(tmp_path: Path) -> None:
    seed = int(os.environ.get("PINNACE_CHAOS_SEED", random.randrange(1 << 30)))
    seconds = float(os.environ.get("PINNACE_CHAOS_SECONDS", "40"))
    report = run_chaos(tmp_path, seconds, seed)
    summary = report.summary()
    print(f"seed={seed}", json.dumps(summary))
    assert not report.violations, f"seed={seed}: {summary}"
    assert set(report.faults) == set(FAULT_KINDS), summary  # every kind was injected at least once
    assert summary["operations_checked"] > 200, summary
    assert report.watch_events > 50, summary
