"""Raft-only benchmark: three RaftReplicators in one process, real gRPC peer sockets on loopback,
durable SQLite raft logs and a small durable KV state machine (tests/support/kvsm.py).
Prints one JSON line: writes_per_s (64 concurrent proposers on the leader), seq_p50_ms,
follower_write_p50_ms (forwarded), read_barrier_p50_ms (leader) and follower_read_barrier_p50_ms.
All three replicas share one event loop and one core here, so a real 3-process cluster does better.

    python bench/raft.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.store.raft.node import NodeOptions
from services.store.raft.replicator import RaftReplicator
from tests.support.kvsm import KVStateMachine
from tests.support.store import free_port


async def p50(fn: object, n: int) -> float:
    lat = []
    for i in range(n):
        t = time.perf_counter()
        await fn(i)  # type: ignore[operator]
        lat.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(lat), 3)


async def main(quick: bool) -> dict[str, object]:
    d = Path(tempfile.mkdtemp(prefix="raft-bench-"))
    peers = {i: f"127.0.0.1:{free_port()}" for i in (1, 2, 3)}
    reps = {
        i: RaftReplicator(KVStateMachine(str(d / str(i))), i, str(d / str(i)), peers, opts=NodeOptions()) for i in peers
    }
    for r in reps.values():
        await r.start()
    try:
        while not any(r.node.is_leader for r in reps.values()):
            await asyncio.sleep(0.01)
        lead = next(r for r in reps.values() if r.node.is_leader)
        fol = next(r for r in reps.values() if not r.node.is_leader)
        n = 200 if quick else 1000
        pad = "x" * 1000
        seq = await p50(lambda i: lead.propose(f"put s{i} {pad}".encode()), n)
        fseq = await p50(lambda i: fol.propose(f"put f{i} {pad}".encode()), n)
        rb = await p50(lambda i: lead.read_barrier(), n)
        frb = await p50(lambda i: fol.read_barrier(), n)
        total = 0
        stop = time.perf_counter() + (3 if quick else 10)

        async def worker(w: int) -> None:
            nonlocal total
            i = 0
            while time.perf_counter() < stop:
                await lead.propose(f"put w{w}-{i} {pad}".encode())
                i += 1
                total += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(64)))
        wps = round(total / (time.perf_counter() - t0), 1)
        return {
            "writes_per_s": wps,
            "seq_p50_ms": seq,
            "follower_write_p50_ms": fseq,
            "read_barrier_p50_ms": rb,
            "follower_read_barrier_p50_ms": frb,
            "replicas": 3,
            "quick": quick,
        }
    finally:
        for r in reps.values():
            await r.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    print(json.dumps(asyncio.run(main(a.quick))))
