"""The local cluster's network: an underlay bridge in its own namespace, one namespace per node and
one for the control plane, and one veth from the host so the CLI reaches the store.

Host side effects, all removed by `teardown`: the veth `pinnace-host` (10.254.0.1/24) and routes
for the cluster and service ranges via the first node. No iptables rule is added in the host
namespace, and no namespace gets a default route, so cluster traffic never leaves the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from pinnace.cluster.layout import CLUSTER_CIDR, CONTROL_PLANE_IP, HOST_IP, SERVICE_CIDR, ClusterSpec, node_ip

HOST_LINK = "pinnace-host"
BRIDGE = "pnbr0"
NETNS_DIR = Path("/run/netns")


class LabError(RuntimeError):
    """A step of building the lab failed; the message has the command and its error."""


def sh(*argv: str, check: bool = True) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def underlay_ns(spec: ClusterSpec) -> str:
    return f"{spec.prefix}-ul"


def control_ns(spec: ClusterSpec) -> str:
    return f"{spec.prefix}-cp"


def node_ns(spec: ClusterSpec, node: str) -> str:
    return f"{spec.prefix}-{node}"


def ns_exists(ns: str) -> bool:
    return (NETNS_DIR / ns).exists()


def _add_ns(ns: str) -> None:
    if not ns_exists(ns):
        sh("ip", "netns", "add", ns)
    sh("ip", "-n", ns, "link", "set", "lo", "up")


def _attach(ul: str, ns: str, port: str, address: str) -> None:
    """A veth from the underlay bridge into ns, named eth0 there, with address/24."""
    if sh("ip", "-n", ns, "-o", "link", "show", "eth0", check=False):
        return
    sh("ip", "-n", ul, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
    sh("ip", "-n", ul, "link", "set", port, "master", BRIDGE, "up")
    sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
    sh("ip", "-n", ns, "link", "set", "eth0", "up")


def build(spec: ClusterSpec) -> None:
    """Create (idempotently) the namespaces, the bridge, the veths and the host routes."""
    ul = underlay_ns(spec)
    _add_ns(ul)
    if not sh("ip", "-n", ul, "-o", "link", "show", BRIDGE, check=False):
        sh("ip", "-n", ul, "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "-n", ul, "link", "set", BRIDGE, "up")
    _add_ns(control_ns(spec))
    _attach(ul, control_ns(spec), "ulp-cp", CONTROL_PLANE_IP)
    for i, node in enumerate(spec.node_names):
        ns = node_ns(spec, node)
        _add_ns(ns)
        _attach(ul, ns, f"ulp-{i}", node_ip(i))
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    if not spec.host_access:
        return
    if not sh("ip", "-o", "link", "show", HOST_LINK, check=False):
        sh("ip", "link", "add", HOST_LINK, "type", "veth", "peer", "name", "ulp-host", "netns", ul)
        sh("ip", "-n", ul, "link", "set", "ulp-host", "master", BRIDGE, "up")
        sh("ip", "addr", "add", f"{HOST_IP}/24", "dev", HOST_LINK)
        sh("ip", "link", "set", HOST_LINK, "up")
    first = node_ip(0)
    for cidr in (CLUSTER_CIDR, SERVICE_CIDR):
        sh("ip", "route", "replace", cidr, "via", first, "dev", HOST_LINK)


def _kill_ns_processes(ns: str) -> None:
    pids = [int(p) for p in sh("ip", "netns", "pids", ns, check=False).split() if p.isdigit()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def delete_ns(ns: str) -> None:
    if ns_exists(ns):
        _kill_ns_processes(ns)
        sh("ip", "netns", "delete", ns, check=False)


def teardown(spec: ClusterSpec) -> None:
    """Remove the host routes and link and every lab namespace (killing what still runs there)."""
    if spec.host_access:
        for cidr in (CLUSTER_CIDR, SERVICE_CIDR):
            sh("ip", "route", "del", cidr, "dev", HOST_LINK, check=False)
        sh("ip", "link", "del", HOST_LINK, check=False)
    for node in spec.node_names:
        delete_ns(node_ns(spec, node))
    delete_ns(control_ns(spec))
    delete_ns(underlay_ns(spec))
