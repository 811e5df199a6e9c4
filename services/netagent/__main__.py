"""`python -m services.netagent --node-name N --store ADDR --backend vxlan|host-gw ...` (root).

Runs in the node's network namespace. `--cleanup` removes what the agent installed (iptables
chains and jumps, the overlay device and routes, the DNS address) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys

from pinnace.api import netdiag_pb2_grpc, nodelocal_pb2_grpc
from pinnace.common import config, server
from pinnace.common.logging import get_logger, setup_logging
from services.netagent.agent import Config, NetAgent, remove_local_address
from services.netagent.overlay import make_backend
from services.netagent.proxy.iptables import Iptables


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = config.EnvDefaultsParser(prog="python -m services.netagent", description=__doc__)
    config.add_common_args(p)
    p.add_argument("--node-name", required=True)
    p.add_argument("--backend", default="vxlan", choices=["vxlan", "host-gw"])
    p.add_argument("--run-dir", default="")
    p.add_argument("--data-dir", default="")
    p.add_argument("--node-ip", default="", help="underlay address (default: the Node's InternalIP)")
    p.add_argument("--service-cidr", default="10.96.0.0/16")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16")
    p.add_argument("--dns-listen", default="10.96.0.10:53", help="cluster DNS address; empty = no DNS")
    p.add_argument("--cluster-domain", default="cluster.local")
    p.add_argument("--bridge", default="pn0")
    p.add_argument("--min-sync-period", type=float, default=0.5, help="seconds between proxy syncs, at least")
    p.add_argument("--iptables-mode", default="", choices=["", "nft", "legacy"], help="default: what iptables is")
    p.add_argument("--cleanup", action="store_true", help="remove everything the agent installed, then exit")
    return p.parse_args(argv)


def make_config(ns: argparse.Namespace) -> Config:
    tls = None
    if ns.tls_dir:
        from pinnace.common import tls as tlsmod

        tls = tlsmod.load(ns.tls_dir, ns.tls_name or "netagent")
    return Config(
        node_name=ns.node_name,
        store=config.store_endpoints(ns),
        backend=ns.backend,
        run_dir=ns.run_dir or f"/run/pinnace/{ns.node_name}",
        data_dir=ns.data_dir or f"/var/lib/pinnace/{ns.node_name}",
        node_ip=ns.node_ip,
        service_cidr=ns.service_cidr,
        cluster_cidr=ns.cluster_cidr,
        dns_listen=ns.dns_listen,
        domain=ns.cluster_domain,
        bridge=ns.bridge,
        min_sync_period=ns.min_sync_period,
        iptables_mode=ns.iptables_mode,
        tls=tls,
    )


def cleanup(cfg: Config) -> None:
    Iptables(cfg.iptables_mode).remove_all()
    with contextlib.suppress(Exception):
        make_backend(cfg.backend).cleanup()
    if cfg.dns_ip:
        with contextlib.suppress(Exception):
            remove_local_address(cfg.dns_ip)


async def serve(cfg: Config, metrics_port: int) -> None:
    log = get_logger("netagent")
    agent = NetAgent(cfg)
    os.makedirs(cfg.run_dir, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(cfg.socket_path)
    from services.netagent.servicers import NetDiag, PodNetwork

    srv = server.build_server(
        "netagent",
        f"unix:{cfg.socket_path}",
        metrics_port=metrics_port,
        service_names=["pinnace.v1.PodNetwork", "pinnace.v1.NetDiag"],
    )
    nodelocal_pb2_grpc.add_PodNetworkServicer_to_server(PodNetwork(agent), srv)
    netdiag_pb2_grpc.add_NetDiagServicer_to_server(NetDiag(agent), srv)
    await srv.start()
    os.chmod(cfg.socket_path, 0o600)
    log.info("listening", socket=cfg.socket_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    start = asyncio.create_task(agent.start())
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({start, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if start in done and start.exception() is None:
        await server.health_serving(srv)
        await stopper
    elif start in done:
        log.error("start-up failed", error=repr(start.exception()))
    start.cancel()
    await agent.stop()
    await srv.stop(1.0)
    log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    setup_logging("netagent", ns.log_level, ns.log_format)
    cfg = make_config(ns)
    if ns.cleanup:
        cleanup(cfg)
        return 0
    asyncio.run(serve(cfg, ns.metrics_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
