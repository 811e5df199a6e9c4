"""A closed-loop HTTP load driver for the SLA tests: `python load.py HOST PORT CONCURRENCY SECONDS`.

CONCURRENCY asyncio workers each send GET / over a fresh connection (so iptables balances every
request) back to back for SECONDS. Prints one JSON line per second ({"t", "n", "errors",
"p95_ms", "p99_ms"}: the requests that finished in that second) and a last one with the totals. Run it
inside a lab namespace (`ip netns exec`), never from the host.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1)


async def one(host: str, port: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        await writer.drain()
        status = await reader.readline()
        if b" 200 " not in status:
            raise ConnectionError(status)
        await reader.read()
    finally:
        writer.close()


async def main() -> None:
    host, port, conc, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    start = time.monotonic()
    deadline = start + seconds
    per_second: dict[int, list[float]] = {}
    errors: dict[int, int] = {}

    async def worker() -> None:
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            try:
                await asyncio.wait_for(one(host, port), 10)
            except (OSError, TimeoutError, ConnectionError):
                sec = int(time.monotonic() - start)
                errors[sec] = errors.get(sec, 0) + 1
                await asyncio.sleep(0.05)
                continue
            t1 = time.monotonic()
            per_second.setdefault(int(t1 - start), []).append(t1 - t0)

    async def report() -> None:
        sec = 0
        while time.monotonic() < deadline + 1:
            await asyncio.sleep(max(0.0, start + sec + 1.05 - time.monotonic()))
            lat = per_second.get(sec, [])
            row = {
                "t": sec,
                "n": len(lat),
                "errors": errors.get(sec, 0),
                "p95_ms": pct(lat, 0.95),
                "p99_ms": pct(lat, 0.99),
            }
            print(json.dumps(row), flush=True)
            sec += 1

    await asyncio.gather(report(), *(worker() for _ in range(conc)))
    every = [x for v in per_second.values() for x in v]
    total = {"requests": len(every), "errors": sum(errors.values()), "p99_ms": pct(every, 0.99)}
    print(json.dumps({"total": total}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
