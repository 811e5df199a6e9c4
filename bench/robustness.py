"""Robustness benchmark: random faults against a 3-replica store for N minutes; prints one JSON line.

    python bench/robustness.py --minutes 10 [--round-seconds 60] [--seed S] [--faults kill9,sigstop,...]

The run is split into rounds (each with its own namespace, registers and watchers, checked at
its end, so every history stays small enough for the linearizability checker) on one store
cluster that lives through all of them. Keys: minutes, rounds, seed, faults (by kind),
operations_checked (by kind in "operations"), unknown_outcome_ops, watch_events_checked,
violations (must be 0; the first few in violation_details), linearizability_undetermined
(registers whose check hit the search limit), recover_seconds_median/max overall and by kind
(from the healing action until the healed replica serves a linearizable read and a write).
See tests/robustness/chaos.py for the workload, the faults and the checks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.robustness.chaos import FAULT_KINDS, Chaos, Report
from tests.support.store import start_store


def merge(reports: list[Report]) -> Report:
    out = Report()
    for r in reports:
        out.seconds += r.seconds
        out.faults.update(r.faults)
        out.ops.update(r.ops)
        out.unknown_ops += r.unknown_ops
        out.watch_events += r.watch_events
        out.watch_reconnects += r.watch_reconnects
        out.violations += r.violations
        out.undetermined += r.undetermined
        out.recover_seconds += r.recover_seconds
        for k, v in r.recover_by_kind.items():
            out.recover_by_kind.setdefault(k, []).extend(v)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--round-seconds", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--faults", default=",".join(FAULT_KINDS), help=f"comma-separated subset of {FAULT_KINDS}")
    p.add_argument("--keep", action="store_true", help="keep the data dirs and logs (printed on stderr)")
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    kinds = tuple(k for k in args.faults.split(",") if k)
    for k in kinds:
        if k not in FAULT_KINDS:
            p.error(f"unknown fault kind {k!r}")
    base = Path(tempfile.mkdtemp(prefix="pinnace-robustness-"))
    total = args.minutes * 60
    reports: list[Report] = []
    t0 = time.monotonic()
    cluster = start_store(base, replicas=3)
    try:
        k = 0
        while time.monotonic() - t0 < total or not reports:
            seconds = min(args.round_seconds, max(10.0, total - (time.monotonic() - t0)))
            chaos = Chaos(cluster, seconds, seed + k, fault_kinds=kinds, namespace=f"chaos-{k}")
            chaos.dump_dir = base
            reports.append(asyncio.run(chaos.run()))
            print(f"round {k}: {json.dumps(reports[-1].summary())}", file=sys.stderr)
            k += 1
    finally:
        cluster.stop()
        if args.keep:
            print(f"data and logs in {base}", file=sys.stderr)
        else:
            import shutil

            shutil.rmtree(base, ignore_errors=True)
    merged = merge(reports)
    out: dict[str, Any] = {"minutes": round((time.monotonic() - t0) / 60, 2), "rounds": len(reports), "seed": seed}
    out.update(merged.summary())
    out.pop("seconds", None)
    out["faults_total"] = sum(Counter(merged.faults).values())
    if merged.recover_seconds:
        out["recover_seconds_p90"] = (
            round(statistics.quantiles(merged.recover_seconds, n=10)[-1], 3)
            if len(merged.recover_seconds) >= 2
            else merged.recover_seconds[0]
        )
    print(json.dumps(out))
    return 1 if merged.violations else 0


if __name__ == "__main__":
    sys.exit(main())
