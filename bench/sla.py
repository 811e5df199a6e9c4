"""Benchmark the SLA controller's reaction to a load step, with default controller settings, on a
2-node lab cluster: a service whose latency grows with its load (50 ms per request in flight),
an ApiSla of 95% within 600 ms, and a load step of 14 closed-loop clients at its ClusterIP from
inside a node namespace.

Prints one JSON line:
- react_s: from the load step to the objective met again (the controller reports Met after
  scaling up, on samples measured with the new replicas);
- react_client_s: the same seen by the load's own clients (first second from which their p95
  stays within the objective for 5 seconds);
- settle_s: from the load step to the last replica change under load;
- overshoot_replicas: the most replicas under load minus the count it settled on;
- down_s (not with --quick): from the end of the load until back to one replica.
Root only; everything runs in namespaces with a bench-only prefix and is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pinnace.api import service_pb2
from tests.e2e.sla import scenario
from tests.support.cluster import LabCluster

OBJECTIVE_MS = 600.0
APP: dict[str, Any] = dict(unit=0.05, latency="600ms", percent="95%", max_replicas=8)


def wait(fn: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if fn():
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise SystemExit(f"timed out waiting for {what}")


def client_react(rows: list[dict[str, Any]], hold: int = 5) -> float | None:
    """First second from which the clients' p95 stays within the objective for `hold` seconds."""
    ok = [r.get("p95_ms") is not None and r["p95_ms"] <= OBJECTIVE_MS for r in rows]
    for i in range(len(ok) - hold + 1):
        if all(ok[i : i + hold]):
            return float(rows[i]["t"])
    return None


def run(c: LabCluster, load_s: float, measure_down: bool) -> dict[str, Any]:
    assert c.client is not None
    scenario.apply(c, scenario.manifests(**APP))
    wait(
        lambda: (
            scenario.condition(s := scenario.sla(c), "Met") and s.status.samples >= 20 and scenario.replicas(c) == 1
        ),
        180,
        "an idle Met with one replica",
    )
    ip = c.client.get(service_pb2.Service, "slow", "default").spec.cluster_ip
    load = scenario.start_load(c, c.ns("node1"), ip, concurrency=14, seconds=load_s)
    t0 = time.monotonic()
    timeline: list[tuple[float, int, bool]] = []  # (seconds since the step, replicas, Met)
    react: float | None = None
    violated = False
    while load.proc.poll() is None and time.monotonic() - t0 < load_s + 15:
        now = time.monotonic() - t0
        try:
            n, met = scenario.replicas(c), scenario.condition(scenario.sla(c), "Met")
        except Exception:
            time.sleep(0.5)
            continue
        timeline.append((now, n, met))
        violated = violated or not met
        if react is None and violated and met:
            react = now
        time.sleep(0.5)
    load.wait(10)
    shown, last = [], None
    for t, n, met in timeline:
        if (n, met) != last:
            shown.append(f"{t:.0f}s:{n}{'M' if met else 'v'}")
            last = (n, met)
    print("timeline (seconds:replicas, M = Met):", " ".join(shown), file=sys.stderr)
    print("client p95 per second:", " ".join(str(r.get("p95_ms")) for r in load.seconds), file=sys.stderr)
    settled = timeline[-1][1] if timeline else 0
    changes = [timeline[i][0] for i in range(1, len(timeline)) if timeline[i][1] != timeline[i - 1][1]]
    out: dict[str, Any] = {
        "react_s": round(react, 1) if react is not None else None,
        "react_client_s": client_react(load.seconds),
        "settle_s": round(changes[-1], 1) if changes else 0.0,
        "overshoot_replicas": max(n for _, n, _ in timeline) - settled if timeline else None,
        "settled_replicas": settled,
        "load_p95_ms_last10s": max((r["p95_ms"] or 0) for r in load.seconds[-11:-1]) if load.seconds else None,
    }
    if measure_down:
        t1 = time.monotonic()
        wait(lambda: scenario.replicas(c) == 1, 600, "back to one replica")
        out["down_s"] = round(time.monotonic() - t1, 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a shorter load step and no scale-down measurement")
    ns = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        c = LabCluster(Path(tmp), nodes=2, store_replicas=1, prefix="pnsb")
        try:
            c.up()
            out = run(c, 90.0 if ns.quick else 150.0, measure_down=not ns.quick)
        finally:
            c.down()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
