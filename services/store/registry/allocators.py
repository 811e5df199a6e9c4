"""ClusterIP and NodePort allocation. Allocations are keys in the store (written in the same
transaction as the Service), so every replica agrees and a conflict makes the create retry.
"""

from __future__ import annotations

import ipaddress
import random
import threading

from services.store.mvcc import Event, MVCCStore

IP_PREFIX = "/ranges/serviceips/"
PORT_PREFIX = "/ranges/nodeports/"


def parse_port_range(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    a, b = int(lo), int(hi or lo)
    if not (0 < a <= b <= 65535):
        raise ValueError(f"bad port range {text!r}: write LOW-HIGH, e.g. 30000-32767")
    return a, b


class _Pool:
    """Used + pending values of one allocation range, kept in sync from applied events."""

    prefix = ""

    def __init__(self, store: MVCCStore) -> None:
        self.store = store
        self.used: set[str] = set()
        self.pending: set[str] = set()
        self._lock = threading.Lock()
        self.reload()
        store.listeners.append(self._on_events)
        store.reset_listeners.append(self.reload)

    def reload(self) -> None:
        used = {k[len(self.prefix) :] for k, _ in self.store.keys_with_prefix(self.prefix)}
        with self._lock:
            self.used = used

    def _on_events(self, events: list[Event]) -> None:
        with self._lock:
            for ev in events:
                if ev.key.startswith(self.prefix):
                    v = ev.key[len(self.prefix) :]
                    if ev.value is not None:
                        self.used.add(v)
                    else:
                        self.used.discard(v)

    def key(self, value: str) -> str:
        return self.prefix + value

    def taken(self, value: str) -> bool:
        return value in self.used or value in self.pending

    def release_pending(self, value: str) -> None:
        self.pending.discard(value)


class ClusterIPAllocator(_Pool):
    """Allocates from the service CIDR; dynamic picks prefer the upper band (like Kubernetes)."""

    prefix = IP_PREFIX

    def __init__(self, store: MVCCStore, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr, strict=False)
        super().__init__(store)
        size = self.network.num_addresses
        self._first = int(self.network.network_address) + 1
        self._last = int(self.network.broadcast_address) - 1
        self._static_band = min(max(16, size // 16), 256)

    def contains(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return addr in self.network and self._first <= int(addr) <= self._last

    def pick(self) -> str | None:
        lo = min(self._first + self._static_band, self._last)
        for _ in range(64):
            ip = str(ipaddress.ip_address(random.randint(lo, self._last)))
            if not self.taken(ip):
                self.pending.add(ip)
                return ip
        for n in (*range(lo, self._last + 1), *range(self._first, lo)):
            ip = str(ipaddress.ip_address(n))
            if not self.taken(ip):
                self.pending.add(ip)
                return ip
        return None


class NodePortAllocator(_Pool):
    prefix = PORT_PREFIX

    def __init__(self, store: MVCCStore, port_range: str) -> None:
        self.lo, self.hi = parse_port_range(port_range)
        super().__init__(store)

    def contains(self, port: int) -> bool:
        return self.lo <= port <= self.hi

    def pick(self) -> int | None:
        for _ in range(64):
            p = random.randint(self.lo, self.hi)
            if not self.taken(str(p)):
                self.pending.add(str(p))
                return p
        for p in range(self.lo, self.hi + 1):
            if not self.taken(str(p)):
                self.pending.add(str(p))
                return p
        return None
