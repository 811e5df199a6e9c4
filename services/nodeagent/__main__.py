"""`python -m services.nodeagent --node-name N --store ADDR --runtime host|docker ...`: run a node agent."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket

from pinnace.common import config
from pinnace.common.logging import get_logger, setup_logging
from services.nodeagent.agent import AgentConfig, NodeAgent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = config.EnvDefaultsParser(prog="python -m services.nodeagent", description="Pinnace node agent")
    config.add_common_args(p)
    p.add_argument("--node-name", default=socket.gethostname(), help="this node's name")
    p.add_argument("--runtime", default="host", choices=["host", "docker"])
    p.add_argument("--run-dir", default="", help="default /run/pinnace/<node>")
    p.add_argument("--data-dir", default="", help="default /var/lib/pinnace/<node>")
    p.add_argument("--address", default="", help="the node's InternalIP (default: the host's primary address)")
    p.add_argument("--port", type=int, default=10250, help="NodeAgent gRPC (logs/exec) port; 0 = any free port")
    p.add_argument("--listen-host", default="", help="address the NodeAgent API binds (default 0.0.0.0)")
    p.add_argument("--max-pods", type=int, default=110)
    p.add_argument("--netagent-socket", default="", help="default <run-dir>/netagent.sock")
    p.add_argument("--volagent-socket", default="", help="default <run-dir>/volagent.sock")
    p.add_argument("--cgroup-root", default="", help="cgroup path under each controller (default pinnace/<node>)")
    p.add_argument("--lease-interval", type=float, default=10.0)
    p.add_argument("--status-interval", type=float, default=10.0)
    p.add_argument("--crashloop-backoff", type=float, default=10.0, help="first crash-loop back-off in seconds")
    p.add_argument("--label", action="append", default=[], help="extra node label key=value (repeatable)")
    return p.parse_args(argv)


def build_config(ns: argparse.Namespace) -> AgentConfig:
    tls = None
    if ns.tls_dir:
        from pinnace.common import tls as tlsmod

        tls = tlsmod.load(ns.tls_dir, ns.tls_name or "nodeagent")
    labels = dict(kv.split("=", 1) for kv in ns.label if "=" in kv)
    return AgentConfig(
        node_name=ns.node_name,
        store=config.store_endpoints(ns),
        runtime=ns.runtime,
        run_dir=ns.run_dir,
        data_dir=ns.data_dir,
        address=ns.address,
        port=ns.port,
        listen_host=ns.listen_host,
        max_pods=ns.max_pods,
        netagent_socket=ns.netagent_socket,
        volagent_socket=ns.volagent_socket,
        cgroup_root=ns.cgroup_root,
        tls=tls,
        metrics_port=ns.metrics_port,
        lease_interval=ns.lease_interval,
        status_interval=ns.status_interval,
        backoff_base=ns.crashloop_backoff,
        labels=labels,
    )


async def run(cfg: AgentConfig) -> None:
    agent = NodeAgent(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.create_task(agent.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():  # stopped while still waiting for the store or the runtime
        starting.cancel()
    else:
        starting.result()
        await stopping
    get_logger("nodeagent").info("stopping; pods keep running")
    await agent.stop()


def main(argv: list[str] | None = None) -> None:
    ns = parse_args(argv)
    setup_logging("nodeagent", ns.log_level, ns.log_format)
    if os.geteuid() != 0:
        get_logger("nodeagent").warning("not running as root: namespaces, mounts and cgroups will fail")
    asyncio.run(run(build_config(ns)))


if __name__ == "__main__":
    main()
