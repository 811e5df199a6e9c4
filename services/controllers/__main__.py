"""`python -m services.controllers --store ADDR`: run the controllers (each active once via its Lease)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket

from pinnace.client import AsyncClient
from pinnace.common import config
from pinnace.common.logging import get_logger, setup_logging
from pinnace.common.server import build_server, health_serving
from pinnace.common.tls import load_optional
from services.controllers.base import Options
from services.controllers.manager import ALL, Manager

log = get_logger("controllers")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = config.EnvDefaultsParser(prog="python -m services.controllers", description=__doc__)
    config.add_common_args(p)
    p.add_argument("--identity", default=f"{socket.gethostname()}-{os.getpid()}", help="leader election identity")
    p.add_argument("--listen", default="", help="health/reflection gRPC address (empty = none)")
    p.add_argument("--node-grace-period", type=float, default=40.0, help="seconds without heartbeat -> Unknown")
    p.add_argument("--eviction-timeout", type=float, default=300.0, help="default toleration of unreachable nodes")
    p.add_argument("--node-monitor-period", type=float, default=2.0)
    p.add_argument("--cluster-cidr", default="10.244.0.0/16")
    p.add_argument("--node-cidr-mask", type=int, default=24)
    p.add_argument("--controllers", default=",".join(ALL), help="comma-separated subset to run")
    p.add_argument("--lease-duration", type=float, default=15.0)
    p.add_argument("--renew-interval", type=float, default=5.0)
    return p.parse_args(argv)


async def amain(args: argparse.Namespace) -> None:
    tls = load_optional(args.tls_dir, args.tls_name or "controllers")
    client = AsyncClient(config.store_endpoints(args), tls)
    server = build_server("controllers", args.listen, tls, args.metrics_port) if args.listen else None
    if server is not None:
        await server.start()
        await health_serving(server)
    options = Options(
        node_grace_period=args.node_grace_period,
        eviction_timeout=args.eviction_timeout,
        monitor_period=args.node_monitor_period,
        cluster_cidr=args.cluster_cidr,
        node_cidr_mask=args.node_cidr_mask,
    )
    enabled = [c.strip() for c in args.controllers.split(",") if c.strip()]
    unknown = [c for c in enabled if c not in ALL]
    if unknown:
        raise SystemExit(f"unknown controllers {unknown}; known: {', '.join(ALL)}")
    manager = Manager(client, args.identity, options, enabled, args.lease_duration, args.renew_interval)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, manager.stop)
    log.info("controllers starting", identity=args.identity, controllers=enabled)
    try:
        await manager.run()
    finally:
        await client.close()
        if server is not None:
            await server.stop(1)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging("controllers", args.log_level, args.log_format)
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
