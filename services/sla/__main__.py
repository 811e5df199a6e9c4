"""`python -m services.sla --store ADDR --listen HOST:PORT`: the SLA controller (one active instance)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from pinnace.api import sla_pb2_grpc
from pinnace.client import AsyncClient, LeaderElector, run_workers
from pinnace.common import config, server, tls
from pinnace.common.logging import get_logger, setup_logging
from services.sla.collector import Collector
from services.sla.controller import SlaController
from services.sla.cost import Prices
from services.sla.decide import Settings

log = get_logger("sla")
LEASE = "sla-controller"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = config.EnvDefaultsParser(prog="python -m services.sla", description=__doc__)
    config.add_common_args(p)
    p.add_argument("--listen", default="127.0.0.1:7300", help="address of the SlaCollector service")
    p.add_argument("--advertise", default="", help="address probes use to reach --listen (default: --listen)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between evaluations of each SLA")
    p.add_argument("--price-cpu-hour", type=float, default=0.04)
    p.add_argument("--price-memory-gib-hour", type=float, default=0.005)
    p.add_argument("--up-cooldown", type=float, default=Settings.up_cooldown)
    p.add_argument("--down-cooldown", type=float, default=Settings.down_cooldown)
    return p.parse_args(argv)


async def amain(ns: argparse.Namespace) -> None:
    cfg = tls.load_optional(ns.tls_dir, ns.tls_name or "controllers")
    client = AsyncClient(config.store_endpoints(ns), cfg)
    ctl = SlaController(
        client,
        identity=f"sla@{ns.advertise or ns.listen}",
        prices=Prices(ns.price_cpu_hour, ns.price_memory_gib_hour),
        settings=Settings(up_cooldown=ns.up_cooldown, down_cooldown=ns.down_cooldown),
        interval=ns.interval,
    )
    srv = server.build_server("sla", ns.listen, cfg, ns.metrics_port, ["pinnace.v1.SlaCollector"])
    sla_pb2_grpc.add_SlaCollectorServicer_to_server(Collector(ctl.windows), srv)
    await srv.start()
    await server.health_serving(srv)
    elector = LeaderElector(client, LEASE, ctl.identity)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def lead() -> None:
        await ctl.start()
        for sla in ctl.slas.list():
            ctl.queue.add(f"{sla.metadata.namespace}/{sla.metadata.name}")
        await run_workers(ctl.queue, ctl.reconcile, workers=2, name="sla")

    runner = asyncio.create_task(elector.run(lead))
    await stop.wait()
    elector.stop()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(runner, 5)
    await ctl.stop()
    await srv.stop(1)
    await client.close()


def main(argv: list[str] | None = None) -> int:
    ns = parse(argv)
    setup_logging("sla", ns.log_level, ns.log_format)
    asyncio.run(amain(ns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
