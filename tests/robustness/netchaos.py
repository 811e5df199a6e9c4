"""A 3-replica store whose replicas live in network namespaces, so a replica can be partitioned.

`NetnsStoreCluster(base, lab)` is a tests.support.store.StoreCluster whose replica i runs inside
the lab node namespace i+1 (tests/support/netlab.py: an underlay bridge in its own namespace, no
route to the host's interfaces): client port 127.0.0.1:7000 inside the namespace, peer traffic
over the underlay (192.168.250.1x:7100). The test process reaches each replica's client port
through a forwarder that listens on the host's loopback and connects inside the namespace, so
`endpoints` are loopback addresses as usual.

`partition(i)` drops everything on the replica's underlay interface with iptables rules inside
that replica's namespace (never in the host's); `heal(i)` deletes them. Closing the lab deletes
the namespaces, and with them any rule left behind.

`python -m tests.robustness.netchaos forward --netns PATH --listen 127.0.0.1:P --target 127.0.0.1:7000`
is the forwarder (listening socket in the host namespace, outgoing connections in PATH's).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from pinnace.cluster import forward
from tests.support.netlab import NETNS_DIR, Lab
from tests.support.store import REPO, StoreCluster, free_port

CLIENT_PORT = 7000
PEER_PORT = 7100
DROP_RULES = (["INPUT", "-i", "eth0", "-j", "DROP"], ["OUTPUT", "-o", "eth0", "-j", "DROP"])


class NetnsStoreCluster(StoreCluster):
    """Store replicas in the lab's node namespaces; see the module docstring."""

    def __init__(self, base: Path, lab: Lab, replicas: int = 3, **flags: Any) -> None:
        super().__init__(base, replicas, flags)
        self.lab = lab
        self.nodes = lab.nodes[:replicas]
        self.partitioned: set[int] = set()
        self._forwarders: list[subprocess.Popen[bytes]] = []

    def command(self, i: int) -> list[str]:
        node = self.nodes[i]
        peers = ",".join(f"{j + 1}={n.ip}:{PEER_PORT}" for j, n in enumerate(self.nodes))
        cmd = [sys.executable, "-m", "services.store", "--id", str(i + 1), "--listen", f"127.0.0.1:{CLIENT_PORT}"]
        cmd += ["--data-dir", str(self.data_dirs[i]), "--peers", peers, "--peer-listen", f"{node.ip}:{PEER_PORT}"]
        for k, v in self.flags.items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        return ["nsenter", f"--net={node.netns_path}", "--", *cmd]

    def start_forwarders(self) -> None:
        for i, node in enumerate(self.nodes):
            port = free_port()
            self.client_ports[i] = port
            self.endpoints[i] = f"127.0.0.1:{port}"
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.robustness.netchaos", "forward", "--netns", node.netns_path,
                 "--listen", self.endpoints[i], "--target", f"127.0.0.1:{CLIENT_PORT}"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=str(REPO), start_new_session=True,
            )  # fmt: skip
            self._forwarders.append(proc)
            assert proc.stdout is not None
            if not proc.stdout.readline().startswith(b"ready"):
                raise RuntimeError(f"forwarder into {node.netns} failed")

    def _iptables(self, i: int, op: str, rule: list[str]) -> subprocess.CompletedProcess[str]:
        node = self.nodes[i]
        return subprocess.run(
            ["nsenter", f"--net={node.netns_path}", "--", "iptables", "-w", op, *rule],
            capture_output=True,
            text=True,
            timeout=30,
        )

    def partition(self, i: int) -> None:
        """Cut replica i off from its peers (its client port stays reachable)."""
        for rule in DROP_RULES:
            r = self._iptables(i, "-I", rule)
            if r.returncode != 0:
                raise RuntimeError(f"iptables in {self.nodes[i].netns}: {r.stderr.strip()}")
        self.partitioned.add(i)

    def heal(self, i: int) -> None:
        for rule in DROP_RULES:
            while self._iptables(i, "-D", rule).returncode == 0:
                pass
        self.partitioned.discard(i)

    def stop(self) -> None:
        for i in list(self.partitioned):
            with contextlib.suppress(Exception):
                self.heal(i)
        super().stop()
        for p in self._forwarders:
            p.kill()
            p.wait()
        self._forwarders.clear()


def start_netns_store(base: Path, lab: Lab, replicas: int = 3, **flags: Any) -> NetnsStoreCluster:
    """Start the replicas in lab's namespaces and wait until all are healthy."""
    base.mkdir(parents=True, exist_ok=True)
    c = NetnsStoreCluster(base, lab, replicas, **flags)
    try:
        c.start_forwarders()
        for i in range(replicas):
            c.start_process(i)
        c.wait_healthy(timeout=60.0)
    except BaseException:
        c.stop()
        raise
    return c


async def _forward(netns: str, listen: str, target: str) -> None:
    lhost, lport = listen.rsplit(":", 1)
    thost, tport = target.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((lhost, int(lport)))  # in the host namespace
    sock.listen(128)
    forward.enter_netns(netns)  # from here on, new sockets (the outgoing connections) are in the lab's
    await forward.serve(sock, thost, int(tport))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="netchaos")
    sub = p.add_subparsers(dest="cmd", required=True)
    fw = sub.add_parser("forward")
    fw.add_argument("--netns", required=True)
    fw.add_argument("--listen", required=True)
    fw.add_argument("--target", required=True)
    args = p.parse_args(argv)
    if not args.netns.startswith(NETNS_DIR):
        p.error("--netns must be under /run/netns")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_forward(args.netns, args.listen, args.target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
