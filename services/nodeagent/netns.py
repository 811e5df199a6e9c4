"""Named network namespaces for pods (`/run/netns/pn-<12 hex of uid>`), via iproute2."""

from __future__ import annotations

import asyncio
import os

NETNS_DIR = "/run/netns"
PREFIX = "pn-"


def netns_name(pod_uid: str) -> str:
    """pn-<first 12 hex digits of the uid without dashes>."""
    return PREFIX + pod_uid.replace("-", "")[:12]


def netns_path(pod_uid: str) -> str:
    return os.path.join(NETNS_DIR, netns_name(pod_uid))


async def _run(*argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    return proc.returncode or 0, err.decode(errors="replace").strip()


async def ensure(pod_uid: str) -> str:
    """Create the pod's netns (idempotent), bring loopback up; returns its path."""
    name = netns_name(pod_uid)
    path = netns_path(pod_uid)
    if not os.path.exists(path):
        rc, err = await _run("ip", "netns", "add", name)
        if rc != 0 and not os.path.exists(path):
            raise RuntimeError(f"ip netns add {name}: {err}")
    rc, err = await _run("ip", "-n", name, "link", "set", "lo", "up")
    if rc != 0:
        raise RuntimeError(f"ip -n {name} link set lo up: {err}")
    return path


async def delete(pod_uid: str) -> None:
    """Remove the pod's netns (idempotent)."""
    await delete_name(netns_name(pod_uid))


async def delete_name(name: str) -> None:
    if os.path.exists(os.path.join(NETNS_DIR, name)):
        rc, err = await _run("ip", "netns", "del", name)
        if rc != 0 and os.path.exists(os.path.join(NETNS_DIR, name)):
            raise RuntimeError(f"ip netns del {name}: {err}")


def list_names() -> list[str]:
    """Names of the pod namespaces on this host (pn-*)."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(PREFIX))
    except FileNotFoundError:
        return []
