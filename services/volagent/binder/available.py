"""Available volumes per storage class, kept sorted by (capacity, name): the smallest fit is a bisect away.

Fed with the newest known state of each PV (informer events and the binder's own writes), so a
volume the binder just bound drops out before the watch event arrives.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from pinnace.api import storage_pb2
from services.volagent.binder import matching as mt


class AvailableIndex:
    def __init__(self) -> None:
        self._by_class: dict[str, list[tuple[int, str]]] = {}
        self._where: dict[str, tuple[str, int]] = {}  # name -> (class, capacity)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def track(self, pv: storage_pb2.PersistentVolume) -> bool:
        """Update pv's entry; returns True when it is (now) available."""
        name = pv.metadata.name
        self.remove(name)
        if not mt.is_available(pv):
            return False
        cls, cap = pv.spec.storage_class_name, mt.capacity_bytes(pv)
        bisect.insort(self._by_class.setdefault(cls, []), (cap, name))
        self._where[name] = (cls, cap)
        return True

    def remove(self, name: str) -> None:
        old = self._where.pop(name, None)
        if old is None:
            return
        lst = self._by_class[old[0]]
        i = bisect.bisect_left(lst, (old[1], name))
        if i < len(lst) and lst[i] == (old[1], name):
            del lst[i]

    def candidates(self, cls: str, min_bytes: int) -> Iterator[str]:
        """Names of available volumes of class cls with capacity >= min_bytes, smallest first."""
        lst = self._by_class.get(cls, [])
        for i in range(bisect.bisect_left(lst, (min_bytes, "")), len(lst)):
            yield lst[i][1]  # callers do not await while iterating, so lst does not change


class SizeIndex:
    """Names grouped by a class and sorted by a size: pending claims by storage class and request."""

    def __init__(self) -> None:
        self._by_class: dict[str, list[tuple[int, str]]] = {}
        self._where: dict[str, tuple[str, int]] = {}

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def put(self, name: str, cls: str, size: int) -> None:
        if self._where.get(name) == (cls, size):
            return
        self.remove(name)
        bisect.insort(self._by_class.setdefault(cls, []), (size, name))
        self._where[name] = (cls, size)

    def remove(self, name: str) -> None:
        old = self._where.pop(name, None)
        if old is None:
            return
        lst = self._by_class[old[0]]
        i = bisect.bisect_left(lst, (old[1], name))
        if i < len(lst) and lst[i] == (old[1], name):
            del lst[i]

    def largest_up_to(
        self, cls: str, max_size: int, limit: int, skip: set[str] | frozenset[str] = frozenset()
    ) -> list[str]:
        """Up to `limit` names of class cls with size <= max_size, largest first, leaving out `skip`."""
        lst = self._by_class.get(cls, [])
        out: list[str] = []
        i = bisect.bisect_right(lst, (max_size, "\U0010ffff")) - 1
        while i >= 0 and len(out) < limit:
            if lst[i][1] not in skip:
                out.append(lst[i][1])
            i -= 1
        return out
