"""`python -m services.store`: run one store replica (a single replica with no --peers is the default)."""

from __future__ import annotations

import os

# Before gRPC loads: its older I/O manager instead of the EventEngine client and listener (gRPC
# experiments that grpcio 1.85 turns on by default): shorter calls, see docs/ARCHITECTURE.md.
# An explicit GRPC_EXPERIMENTS wins.
os.environ.setdefault("GRPC_EXPERIMENTS", "-event_engine_client,-event_engine_listener")

import argparse
import asyncio
import gc
import signal
import sys

from pinnace.common import config, logging, server, tls
from services.store import metrics
from services.store.compaction import AgeCompactor
from services.store.limits import add_limit_flags, limits_from_args
from services.store.mvcc import DEFAULT_HISTORY_WINDOW, MVCCStore
from services.store.replicator_factory import make_replicator
from services.store.server import SERVICE_NAME, StoreService, add_to_server
from services.store.watch import BOOKMARK_INTERVAL, WatchHub


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = config.EnvDefaultsParser(prog="python -m services.store", description="Pinnace store replica")
    p.add_argument("--id", type=int, default=1, help="this replica's id (1..N)")
    p.add_argument("--listen", default="127.0.0.1:7000", help="client address host:port")
    p.add_argument("--data-dir", required=True, help="directory for state.db and the raft log")
    p.add_argument("--peers", default="", help="id=host:port of every replica's peer address, comma-separated")
    p.add_argument("--peer-listen", default="", help="address for raft peer traffic (default: from --peers)")
    p.add_argument("--service-cidr", default="10.96.0.0/16")
    p.add_argument("--node-port-range", default="30000-32767")
    p.add_argument("--history-window", type=int, default=DEFAULT_HISTORY_WINDOW, help="revisions of watch history")
    p.add_argument("--history-age", type=float, default=3600.0, help="seconds of watch history to keep (0 = no limit)")
    p.add_argument(
        "--state-sync",
        choices=["full", "normal"],
        default="normal",
        help="SQLite synchronous mode of state.db (default normal: the raft log, always synchronous=FULL, "
        "replays any applies a crash loses; full adds one fsync per batch)",
    )
    p.add_argument("--bookmark-interval", type=float, default=BOOKMARK_INTERVAL, help=argparse.SUPPRESS)
    add_limit_flags(p)
    config.add_common_args(p, store=False)
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    log = logging.get_logger("store")
    store = MVCCStore(args.data_dir, history_window=args.history_window)
    if args.state_sync == "normal":
        store.set_durable(False)
    hub = WatchHub(store)
    hub.attach(asyncio.get_running_loop())
    replicator = make_replicator(args, store)
    tls_cfg = tls.load_optional(args.tls_dir, args.tls_name or "store") if args.tls_dir else None
    service = StoreService(
        store,
        replicator,
        hub,
        service_cidr=args.service_cidr,
        node_port_range=args.node_port_range,
        bookmark_interval=args.bookmark_interval,
        authorize=tls_cfg is not None,
        limits=limits_from_args(args),
    )
    srv = server.build_server(
        "store", args.listen, tls_cfg, args.metrics_port, service_names=[SERVICE_NAME], count_calls=False
    )
    add_to_server(service, srv)
    metrics.register(store, hub, replicator)
    await server.health_serving(srv, False)  # SERVING only once bootstrapped
    await replicator.start()
    await srv.start()
    await service.bootstrap()
    service.start()
    gc.collect()
    gc.freeze()  # long-lived startup objects leave the collector's generations
    gc.set_threshold(20_000, 20, 20)
    compactor = AgeCompactor(store, replicator, args.history_age)
    compactor.start()
    await server.health_serving(srv)
    log.info(
        "store replica serving",
        id=args.id,
        listen=args.listen,
        data_dir=args.data_dir,
        revision=store.revision(),
        pid=os.getpid(),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("store replica stopping")
    await server.health_serving(srv, False)
    hub.close()
    await service.stop()
    await compactor.stop()
    await srv.stop(grace=1.0)
    await replicator.stop()
    service.close()
    store.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.setup_logging("store", args.log_level, args.log_format)
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
