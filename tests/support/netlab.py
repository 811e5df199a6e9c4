"""An isolated multi-node network lab built entirely from network namespaces.

Layout (every name is prefixed with a per-lab tag, so parallel labs never collide)::

    <tag>u        underlay namespace: bridge "br0", one veth port per node ("n1", "n2", ...)
    <tag>n1 ...   one namespace per node: "eth0" on the underlay (192.168.250.11/24, ...), "lo"
    <tag>x        an "outside" host on the underlay (192.168.250.254) for egress checks

Nothing is added to the host's own namespace: no links, no addresses, no routes and no
iptables rules. No namespace has a default route, so a stray packet has nowhere to go.
Processes that must reach something on the host's loopback (a store started by
tests/support/store.py) get a TCP forwarder: `lab.forward(node, port, target_port)` listens
inside the node's namespace and connects on the host's loopback.

Use as a context manager (or call `close()`); closing kills every process left in the lab's
namespaces (nodes, outside host and pod namespaces registered with `track_netns`) and deletes
the namespaces, also after a failure. `python -m tests.support.netlab cleanup` removes labs left
behind by dead test processes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pinnace.cluster import forward

NETNS_DIR = "/run/netns"
TAG_PREFIX = "pnl"


def is_root() -> bool:
    return os.geteuid() == 0


def have_tools() -> str:
    """An empty string when the lab can run here, otherwise the reason it cannot."""
    if not is_root():
        return "needs root (network namespaces)"
    for tool in ("ip", "nsenter"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return ""


def run(argv: Sequence[str], *, check: bool = True, input: str | None = None, timeout: float = 30) -> str:
    """Run a command; return stdout; raise with stderr on failure when check."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, input=input, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)!r} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def netns_pids(ns: str) -> list[int]:
    out = run(["ip", "netns", "pids", ns], check=False)
    return [int(p) for p in out.split() if p.isdigit()]


def kill_netns_processes(ns: str, timeout: float = 3.0) -> None:
    """SIGTERM then SIGKILL every process whose network namespace is ns."""
    me = os.getpid()
    pids = [p for p in netns_pids(ns) if p != me]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            pids = [p for p in netns_pids(ns) if p != me]
            if pids:
                time.sleep(0.05)
        if not pids:
            return


def delete_netns(ns: str) -> None:
    if os.path.exists(os.path.join(NETNS_DIR, ns)):
        kill_netns_processes(ns)
        run(["ip", "netns", "del", ns], check=False)


@dataclass
class Node:
    """One node of the lab: its namespace and underlay address."""

    name: str
    netns: str
    ip: str
    index: int

    @property
    def netns_path(self) -> str:
        return os.path.join(NETNS_DIR, self.netns)


@dataclass
class Lab:
    """An underlay bridge, N node namespaces and an outside host; see the module docstring."""

    nodes_count: int = 3
    subnet: str = "192.168.250"
    mtu: int = 1500
    tag: str = ""
    nodes: list[Node] = field(default_factory=list)
    outside_ip: str = ""
    _namespaces: list[str] = field(default_factory=list)
    _procs: list[subprocess.Popen[Any]] = field(default_factory=list)
    _closed: bool = False

    def __post_init__(self) -> None:
        if not self.tag:
            # pid in the tag lets `cleanup_stale` find labs of dead processes.
            self.tag = f"{TAG_PREFIX}{os.getpid()}-{secrets.token_hex(2)}-"

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Lab:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def underlay(self) -> str:
        return f"{self.tag}u"

    @property
    def outside(self) -> str:
        return f"{self.tag}x"

    def start(self) -> Lab:
        cleanup_stale()  # labs of test processes that were killed before they could clean up
        u = self.underlay
        self._add_netns(u)
        self.ip(u, "link", "add", "br0", "type", "bridge")
        self.ip(u, "link", "set", "br0", "mtu", str(self.mtu), "up")
        self.ip(u, "link", "set", "lo", "up")
        for i in range(1, self.nodes_count + 1):
            self.add_node(i)
        self.outside_ip = f"{self.subnet}.254"
        self._attach(self.outside, "x", self.outside_ip)
        return self

    def add_node(self, i: int) -> Node:
        ns = f"{self.tag}n{i}"
        ip = f"{self.subnet}.{10 + i}"
        self._attach(ns, f"n{i}", ip)
        node = Node(name=f"node{i}", netns=ns, ip=ip, index=i)
        self.nodes.append(node)
        return node

    def _attach(self, ns: str, port: str, ip: str) -> None:
        u = self.underlay
        self._add_netns(ns)
        self.ip(u, "link", "add", port, "mtu", str(self.mtu), "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.ip(u, "link", "set", port, "master", "br0", "up")
        self.ip(ns, "link", "set", "lo", "up")
        self.ip(ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        self.ip(ns, "link", "set", "eth0", "up")

    def _add_netns(self, ns: str) -> None:
        run(["ip", "netns", "add", ns])
        self._namespaces.append(ns)

    def track_netns(self, ns: str) -> None:
        """Register a namespace made by someone else (a pod's) so close() removes it."""
        if ns not in self._namespaces:
            self._namespaces.append(ns)

    def add_netns(self, ns: str) -> str:
        """Create (and track) an extra namespace, e.g. a pod's; returns its path."""
        self._add_netns(ns)
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        return os.path.join(NETNS_DIR, ns)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for p in self._procs:
            if p.poll() is None:
                p.terminate()
        for p in self._procs:
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=3)
        for ns in reversed(self._namespaces):
            delete_netns(ns)
        self._namespaces.clear()

    # -- helpers ---------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    @staticmethod
    def ip(ns: str, *args: str, check: bool = True) -> str:
        return run(["ip", "-n", ns, *args], check=check)

    @staticmethod
    def exec(ns: str, *argv: str, check: bool = True, timeout: float = 30, input: str | None = None) -> str:
        """Run a command inside namespace ns (network namespace only) and return its stdout."""
        return run(["nsenter", f"--net={NETNS_DIR}/{ns}", "--", *argv], check=check, timeout=timeout, input=input)

    def spawn(
        self,
        ns: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        stdout: Any = None,
        stderr: Any = None,
        cwd: str | None = None,
    ) -> subprocess.Popen[Any]:
        """Start a long-running process inside namespace ns; close() stops it.

        nsenter joins only the network namespace (`ip netns exec` would also give the process a
        private mount namespace, where namespaces that others add later under /run/netns, such
        as pods', are not visible).
        """
        proc = subprocess.Popen(
            ["nsenter", f"--net={NETNS_DIR}/{ns}", "--", *argv],
            env={**os.environ, **(env or {})},
            stdout=stdout if stdout is not None else subprocess.DEVNULL,
            stderr=stderr if stderr is not None else subprocess.DEVNULL,
            cwd=cwd,
            start_new_session=True,
        )
        self._procs.append(proc)
        return proc

    def forward(self, ns: str, listen_port: int, target_port: int, *, listen_host: str = "0.0.0.0") -> None:
        """Listen on listen_host:listen_port inside ns and forward each connection to the
        host's 127.0.0.1:target_port (e.g. a store started on loopback)."""
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.netlab",
                "forward",
                "--netns",
                os.path.join(NETNS_DIR, ns),
                "--listen",
                f"{listen_host}:{listen_port}",
                "--target",
                f"127.0.0.1:{target_port}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        )
        self._procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "ready\n" once listening
        if not line.startswith(b"ready"):
            raise RuntimeError(f"forwarder into {ns} failed to start")


async def _forward_main(netns: str, listen: str, target: str) -> None:
    lhost, lport = listen.rsplit(":", 1)
    thost, tport = target.rsplit(":", 1)
    # The listening socket lives in the lab namespace, connections out in ours.
    home_fd = os.open(f"/proc/{os.getpid()}/ns/net", os.O_RDONLY)
    forward.enter_netns(netns)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((lhost, int(lport)))
    sock.listen(128)
    forward.setns_fd(home_fd, "the home namespace")
    os.close(home_fd)
    await forward.serve(sock, thost, int(tport))


def cleanup_stale() -> list[str]:
    """Delete lab namespaces whose creating process is gone; returns their names."""
    removed: list[str] = []
    if not os.path.isdir(NETNS_DIR):
        return removed
    for ns in os.listdir(NETNS_DIR):
        if not ns.startswith(TAG_PREFIX):
            continue
        pid = ns[len(TAG_PREFIX) :].split("-", 1)[0]
        alive = pid.isdigit() and os.path.exists(f"/proc/{pid}")
        if not alive:
            delete_netns(ns)
            removed.append(ns)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netlab")
    sub = parser.add_subparsers(dest="cmd", required=True)
    fw = sub.add_parser("forward", help="TCP forwarder from a namespace to the host's loopback")
    fw.add_argument("--netns", required=True)
    fw.add_argument("--listen", required=True)
    fw.add_argument("--target", required=True)
    sub.add_parser("cleanup", help="remove labs left behind by dead processes")
    args = parser.parse_args(argv)
    if args.cmd == "forward":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_forward_main(args.netns, args.listen, args.target))
        return 0
    for ns in cleanup_stale():
        print("removed", ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
