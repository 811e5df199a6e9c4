"""Host-local IPAM: addresses from the node's podCIDR, persisted in the data directory.

Like CNI's host-local plugin: allocations are keyed by pod uid (idempotent), handed out
round-robin after the last one (so a freed address is not reused at once), never twice, and
written atomically (temp file + fsync + rename) before they are returned, so they survive a
restart. The network address, the gateway (.1) and the broadcast address are never handed out.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
from dataclasses import dataclass


class IPAMError(Exception):
    """Raised when no address is left or the pod CIDR is unusable."""


@dataclass(frozen=True)
class Allocation:
    ip: str
    uid: str
    namespace: str
    name: str
    netns: str = ""


class IPAM:
    """Thread-safe allocator over one IPv4 CIDR, with its state in `path` (JSON)."""

    def __init__(self, path: str, cidr: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.network = ipaddress.IPv4Network(cidr, strict=False)
        if self.network.num_addresses < 4:
            raise IPAMError(f"pod CIDR {cidr} is too small")
        self._by_ip: dict[str, Allocation] = {}
        self._last = ""
        self._load()

    @property
    def gateway(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def prefix_length(self) -> int:
        return self.network.prefixlen

    def _load(self) -> None:
        try:
            with open(self.path) as f:
                data = json.load(f)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            raise IPAMError(f"cannot read {self.path}: {e}") from e
        if data.get("cidr") != str(self.network):
            # The node got a different podCIDR: earlier allocations mean nothing now.
            return
        for ip, a in data.get("allocations", {}).items():
            self._by_ip[ip] = Allocation(
                ip=ip,
                uid=a["uid"],
                namespace=a.get("namespace", ""),
                name=a.get("name", ""),
                netns=a.get("netns", ""),
            )
        self._last = data.get("last", "")

    def _save(self) -> None:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        data = {
            "cidr": str(self.network),
            "last": self._last,
            "allocations": {
                ip: {"uid": a.uid, "namespace": a.namespace, "name": a.name, "netns": a.netns}
                for ip, a in sorted(self._by_ip.items())
            },
        }
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dfd = os.open(os.path.dirname(self.path) or ".", os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _candidates(self) -> list[ipaddress.IPv4Address]:
        first = int(self.network.network_address) + 2
        last = int(self.network.broadcast_address) - 1
        n = last - first + 1
        start = first
        if self._last:
            lv = int(ipaddress.IPv4Address(self._last))
            if first <= lv <= last:
                start = lv + 1
        return [ipaddress.IPv4Address(first + ((start - first + k) % n)) for k in range(n)]

    def lookup(self, uid: str) -> Allocation | None:
        with self._lock:
            return next((a for a in self._by_ip.values() if a.uid == uid), None)

    def allocate(self, uid: str, namespace: str = "", name: str = "", netns: str = "") -> Allocation:
        """The pod's address: the one it already has, or a new one (persisted before return)."""
        with self._lock:
            for ip, a in self._by_ip.items():
                if a.uid == uid:
                    if netns and a.netns != netns:
                        a = Allocation(ip=ip, uid=uid, namespace=namespace, name=name, netns=netns)
                        self._by_ip[ip] = a
                        self._save()
                    return a
            for cand in self._candidates():
                ip = str(cand)
                if ip not in self._by_ip:
                    a = Allocation(ip=ip, uid=uid, namespace=namespace, name=name, netns=netns)
                    self._by_ip[ip] = a
                    self._last = ip
                    self._save()
                    return a
            raise IPAMError(f"no free address left in {self.network}")

    def release(self, uid: str) -> str | None:
        """Free the pod's address; returns it, or None if the pod had none."""
        with self._lock:
            for ip, a in list(self._by_ip.items()):
                if a.uid == uid:
                    del self._by_ip[ip]
                    self._save()
                    return ip
            return None

    def allocations(self) -> list[Allocation]:
        with self._lock:
            return list(self._by_ip.values())
