"""Wiring: Volumes service on the unix socket, emptyDir size watcher, and (optionally) the PV binder."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal

from pinnace.client import AsyncClient
from pinnace.common import config
from pinnace.common.logging import get_logger, setup_logging
from pinnace.common.server import health_serving
from services.volagent.binder.controller import Binder, event_recorder, leader_identity, run_with_lease
from services.volagent.manager import VolumeManager
from services.volagent.reclaimer import NodeReclaimer
from services.volagent.service import start_volumes_server
from services.volagent.storelink import Evictor, StoreLookup

log = get_logger("volagent")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = config.EnvDefaultsParser(prog="python -m services.volagent", description="Pinnace volume agent")
    p.add_argument("--node-name", required=True, help="this node's name")
    p.add_argument("--run-dir", default="", help="socket directory (default /run/pinnace/<node>)")
    p.add_argument("--data-dir", default="", help="pod data directory (default /var/lib/pinnace/<node>)")
    p.add_argument("--no-binder", action="store_true", help="do not run the PV binder in this process")
    p.add_argument(
        "--provision-dir", default="/var/lib/pinnace/volumes", help="base dir of dynamically provisioned hostPath PVs"
    )
    p.add_argument(
        "--reclaim-root",
        action="append",
        default=[],
        help="a directory under which Delete/Recycle may remove PV data (repeatable; provision dir always allowed)",
    )
    p.add_argument("--size-check-interval", type=float, default=10.0, help="seconds between emptyDir usage checks")
    p.add_argument("--binder-workers", type=int, default=32)
    p.add_argument("--lease-duration", type=float, default=15.0)
    p.add_argument("--renew-interval", type=float, default=5.0)
    config.add_common_args(p)
    ns = p.parse_args(argv)
    ns.run_dir = ns.run_dir or f"/run/pinnace/{ns.node_name}"
    ns.data_dir = ns.data_dir or f"/var/lib/pinnace/{ns.node_name}"
    return ns


async def _size_watch(manager: VolumeManager, evictor: Evictor, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await manager.check_sizes(evictor)
        except Exception as exc:
            log.warning("size check failed", error=str(exc))


async def run(ns: argparse.Namespace) -> None:
    tls = None
    if ns.tls_dir:
        from pinnace.common import tls as tlsmod

        tls = tlsmod.load(ns.tls_dir, ns.tls_name or "volagent")
    client = AsyncClient(config.store_endpoints(ns), tls=tls)
    recorder = event_recorder(client, component="volagent")
    recorder.start()
    manager = VolumeManager(ns.data_dir, StoreLookup(client))
    sock = os.path.join(ns.run_dir, "volagent.sock")
    server = await start_volumes_server(manager, sock, ns.metrics_port)
    await health_serving(server)
    log.info("volagent serving", socket=sock, node=ns.node_name, binder=not ns.no_binder)
    roots = [ns.provision_dir, *ns.reclaim_root]
    tasks = [
        asyncio.create_task(_size_watch(manager, Evictor(client, ns.node_name, recorder), ns.size_check_interval)),
        asyncio.create_task(NodeReclaimer(client, ns.node_name, roots).run()),
    ]
    if not ns.no_binder:

        def make() -> Binder:
            return Binder(
                client,
                provision_dir=ns.provision_dir,
                reclaim_roots=ns.reclaim_root,
                workers=ns.binder_workers,
                recorder=event_recorder(client),
                node_name=ns.node_name,
            )

        lease = {"lease_duration": ns.lease_duration, "renew_interval": ns.renew_interval}
        tasks.append(asyncio.create_task(run_with_lease(client, make, f"{ns.node_name}-{leader_identity()}", **lease)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for t in done:
        if t is not waiter and t.exception() is not None:
            log.error("volagent task failed", error=repr(t.exception()))
    for t in [waiter, *tasks]:
        t.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t
    await server.stop(2)
    await recorder.stop()
    await client.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sock)


def main(argv: list[str] | None = None) -> None:
    ns = parse_args(argv)
    setup_logging("volagent", ns.log_level, ns.log_format)
    asyncio.run(run(ns))
