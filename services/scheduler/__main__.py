"""`python -m services.scheduler --store ADDR`: run the scheduler (one active instance via a Lease)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket

from pinnace.client import AsyncClient, LeaderElector
from pinnace.common import config
from pinnace.common.logging import get_logger, setup_logging
from pinnace.common.server import build_server, health_serving
from pinnace.common.tls import load_optional
from services.scheduler.scheduler import DEFAULT_SCHEDULER, Scheduler

log = get_logger("scheduler")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = config.EnvDefaultsParser(prog="python -m services.scheduler", description=__doc__)
    config.add_common_args(p)
    p.add_argument("--identity", default=f"{socket.gethostname()}-{os.getpid()}", help="leader election identity")
    p.add_argument("--scheduler-name", default=DEFAULT_SCHEDULER, help="pods with this schedulerName (or none)")
    p.add_argument("--listen", default="", help="health/reflection gRPC address (empty = none)")
    p.add_argument("--lease-duration", type=float, default=15.0)
    p.add_argument("--renew-interval", type=float, default=5.0)
    p.add_argument("--bind-concurrency", type=int, default=128, help="binds in flight at once")
    p.add_argument("--no-events", action="store_true", help="do not write Scheduled/FailedScheduling Events")
    return p.parse_args(argv)


async def amain(args: argparse.Namespace) -> None:
    tls = load_optional(args.tls_dir, args.tls_name or "scheduler")
    client = AsyncClient(config.store_endpoints(args), tls)
    server = build_server("scheduler", args.listen, tls, args.metrics_port) if args.listen else None
    if server is not None:
        await server.start()
    sched = Scheduler(client, args.identity, args.scheduler_name, args.bind_concurrency, events=not args.no_events)
    elector = LeaderElector(
        client, "scheduler", args.identity, lease_duration=args.lease_duration, renew_interval=args.renew_interval
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, elector.stop)
    await sched.start()
    if server is not None:
        await health_serving(server)
    log.info("scheduler ready", identity=args.identity, nodes=sched.cache.node_count())
    try:
        await elector.run(sched.lead)
    finally:
        await sched.stop()
        await client.close()
        if server is not None:
            await server.stop(1)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging("scheduler", args.log_level, args.log_format)
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
