"""Benchmark the netagent; prints one JSON line. Root only; everything runs in lab namespaces.

- full_sync_s: a full proxy sync of S services x 5 endpoints (render + iptables-restore), and
  full_sync_overhead_ratio: that over iptables-restore alone loading the same payload, same run;
  both from an empty nat table, in a namespace of their own, interleaved, best of 4-5.
- endpoint_change_ms: one Service's endpoints change -> its chains restored (--noflush, only the
  changed chains), median of 5 (endpoint_change_max_ms too).
- vxlan_throughput_ratio: iperf3 pod -> pod across nodes (vxlan) over pod -> pod on one node.
- dns_p99_ms: cluster DNS latency at 1,000 queries/s from a pod (best of 2-3 runs; all listed).

`--quick`: 1,000 services, shorter iperf3 and DNS runs (under a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import select
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dnslib import DNSRecord

REPO = str(Path(__file__).resolve().parents[1])


# -- proxy (runs inside a namespace, as `--inner-proxy`) ---------------------------------------
def _ports(n_services: int, n_endpoints: int, gen: int = 0) -> list:
    from services.netagent.proxy.model import Endpoint, ServicePort

    out = []
    for i in range(n_services):
        ip = f"10.96.{(i // 250) % 250}.{i % 250 + 1}"
        eps = tuple(Endpoint(f"10.244.{(i + j) % 250}.{(i // 250 + gen) % 250 + 2}", 8080) for j in range(n_endpoints))
        out.append(ServicePort("bench", f"svc-{i}", "http", "tcp", ip, 80, endpoints=eps))
    return out


async def _inner_proxy(n_services: int, n_endpoints: int) -> dict[str, float]:
    from services.netagent.proxy import rules
    from services.netagent.proxy.iptables import Iptables
    from services.netagent.proxy.model import Endpoint
    from services.netagent.proxy.syncer import ProxySyncer

    ipt = Iptables()
    ports = _ports(n_services, n_endpoints)
    reps = 5 if n_services <= 2000 else 4
    full_times, restore_times = [], []
    payload = ""
    empty = "*nat\nCOMMIT\n"
    for _ in range(reps):
        ipt.restore(empty, noflush=False)
        s = ProxySyncer(ipt, rules.Options(), min_sync_period=0)
        for sp in ports:
            s.set_service(f"bench/{sp.name}", [sp])
        t0 = time.perf_counter()
        await s.sync_once(full=True)
        full_times.append(time.perf_counter() - t0)
        new: rules.Ruleset = {}
        for r in s._rendered.values():
            new.update(r.chains)
        new.update(s._assemble_tops())
        payload = rules.full_table_payload(new, rules.parse_foreign(""))
        ipt.restore(empty, noflush=False)
        t0 = time.perf_counter()
        ipt.restore(payload, noflush=False)
        restore_times.append(time.perf_counter() - t0)
    # Endpoint changes on top of the full state (the syncer's view matches the kernel again).
    ipt.restore(empty, noflush=False)
    s = ProxySyncer(ipt, rules.Options(), min_sync_period=0)
    for sp in ports:
        s.set_service(f"bench/{sp.name}", [sp])
    await s.sync_once(full=True)
    changes = []
    written = 0
    for k in range(5):
        sp = ports[random.randrange(len(ports))]
        eps = (*sp.endpoints[1:], Endpoint(f"10.245.{k}.{random.randrange(2, 250)}", 8080))
        from dataclasses import replace

        t0 = time.perf_counter()
        s.set_service(f"bench/{sp.name}", [replace(sp, endpoints=eps)])
        st = await s.sync_once()
        changes.append((time.perf_counter() - t0) * 1000)
        written = max(written, st.chains_written + st.chains_deleted)
        assert not st.full
    rules_n = payload.count("\n-A ")
    ipt.restore(empty, noflush=False)
    return {
        "full_sync_s": round(min(full_times), 3),
        "restore_only_s": round(min(restore_times), 3),
        "full_sync_overhead_ratio": round(min(full_times) / min(restore_times), 3),
        "endpoint_change_ms": round(statistics.median(changes), 1),
        "endpoint_change_max_ms": round(max(changes), 1),
        "endpoint_change_chains": written,
        "rules": rules_n,
        "iptables_mode": ipt.mode,
    }


# -- throughput and DNS (the lab with agents) --------------------------------------------------
def _iperf(c, server, client, seconds: int) -> float:  # type: ignore[no-untyped-def]
    out = c.lab.exec(
        client.netns, "iperf3", "-c", server.ip, "-t", str(seconds), "-J", "-p", "5201", timeout=seconds + 30
    )
    data = json.loads(out)
    return float(data["end"]["sum_received"]["bits_per_second"]) / 1e9


def _dns_load(netns_path: str, server: str, name: str, qps: int, seconds: float) -> list[float]:
    """Send A queries at a fixed rate from the pod's namespace; return latencies (ms)."""
    from services.netagent.links import in_netns

    with in_netns(netns_path):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    s.connect((server, 53))
    packets = []
    for i in range(65536):
        q = DNSRecord.question(name, "A")
        q.header.id = i
        packets.append(q.pack())
    sent: dict[int, float] = {}
    lat: list[float] = []
    total = int(qps * seconds)
    t_start = time.perf_counter()
    i = 0
    while i < total or (sent and time.perf_counter() - t_start < seconds + 2):
        now = time.perf_counter()
        due = t_start + i / qps
        if i < total and now >= due:
            qid = i % 65536
            s.send(packets[qid])
            sent[qid] = time.perf_counter()
            i += 1
            continue
        wait = max(0.0, min(due - now, 0.002)) if i < total else 0.01
        r, _, _ = select.select([s], [], [], wait)
        if r:
            while True:
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    break
                t = time.perf_counter()
                qid = int.from_bytes(data[:2], "big")
                t0 = sent.pop(qid, None)
                if t0 is not None:
                    lat.append((t - t0) * 1000)
    lost = len(sent)
    s.close()
    lat.extend([1000.0] * lost)  # a lost query counts as 1 s
    return lat


def _lab_part(quick: bool) -> dict[str, float]:
    from tests.e2e.netagent.harness import FakeStoreThread, NetCluster
    from tests.support.netlab import Lab

    store = FakeStoreThread()
    tmp = tempfile.mkdtemp(prefix="pinnace-bench-net-")
    out: dict[str, float] = {}
    try:
        with Lab(nodes_count=2) as lab:
            c = NetCluster(lab, store.port, tmp, backend="vxlan")
            try:
                c.register_nodes()
                for n in lab.nodes:
                    c.start_agent(n.name)
                a1, a2, b1 = c.add_pod("node1", "a1"), c.add_pod("node1", "a2"), c.add_pod("node2", "b1")
                seconds = 2 if quick else 5
                if shutil.which("iperf3"):
                    for p in (a2, b1):
                        lab.spawn(p.netns, ["iperf3", "-s", "-p", "5201"])
                    time.sleep(0.5)
                    # Interleaved, best of each: the machine is shared, so single runs are noisy.
                    sames, crosses = [], []
                    for _ in range(2 if quick else 3):
                        sames.append(_iperf(c, a2, a1, seconds))
                        crosses.append(_iperf(c, b1, a1, seconds))
                    same, cross = max(sames), max(crosses)
                    out["same_node_gbps"] = round(same, 2)
                    out["cross_node_vxlan_gbps"] = round(cross, 2)
                    out["vxlan_throughput_ratio"] = round(cross / same, 3)
                c.add_service("dnsbench", "10.96.0.50", [b1])
                name = "dnsbench.default.svc.cluster.local"
                deadline = time.monotonic() + 10
                while not c.probe(a1, "dns", name).ok and time.monotonic() < deadline:
                    time.sleep(0.1)
                # Several runs; the best run's p99 is reported, every run's p99 is listed.
                runs = []
                for _ in range(2 if quick else 3):
                    lat = sorted(_dns_load(a1.netns_path, "10.96.0.10", name, 1000, 3 if quick else 10))
                    runs.append((lat[int(len(lat) * 0.99) - 1], lat[len(lat) // 2], len(lat)))
                best = min(runs)
                out["dns_p99_ms"] = round(best[0], 3)
                out["dns_p50_ms"] = round(best[1], 3)
                out["dns_queries"] = best[2]
                out["dns_p99_runs_ms"] = [round(r[0], 3) for r in runs]  # type: ignore[assignment]
            finally:
                c.close()
    finally:
        store.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--services", type=int, default=0)
    ap.add_argument("--endpoints", type=int, default=5)
    ap.add_argument("--inner-proxy", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    n_services = args.services or (1000 if args.quick else 10000)
    if args.inner_proxy:
        print(json.dumps(asyncio.run(_inner_proxy(n_services, args.endpoints))))
        return 0
    if os.geteuid() != 0:
        print(json.dumps({"error": "needs root (network namespaces)"}))
        return 1
    from tests.support.netlab import Lab

    result: dict[str, object] = {"services": n_services, "endpoints_per_service": args.endpoints}
    result["loadavg_1m_at_start"] = round(os.getloadavg()[0], 2)
    with Lab(nodes_count=1) as lab:
        ns = f"{lab.tag}proxy"
        lab.add_netns(ns)
        out = lab.exec(
            ns,
            sys.executable,
            str(Path(__file__).resolve()),
            "--inner-proxy",
            "--services",
            str(n_services),
            "--endpoints",
            str(args.endpoints),
            timeout=900,
        )
        result.update(json.loads(out.strip().splitlines()[-1]))
    result.update(_lab_part(args.quick))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
