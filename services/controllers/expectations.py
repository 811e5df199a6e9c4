"""Expectations (client-go's ControllerExpectations): creates and deletes a controller has issued but
its informer has not shown yet, so it does not act twice on a stale cache."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

EXPECTATIONS_TIMEOUT = 30.0


@dataclass
class _Pending:
    adds: set[str] = field(default_factory=set)
    dels: set[str] = field(default_factory=set)
    since: float = field(default_factory=time.monotonic)


class Expectations:
    """Per controller key, the names of objects we created or deleted and wait to observe."""

    def __init__(self, timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self.timeout = timeout
        self._pending: dict[str, _Pending] = {}

    def satisfied(self, key: str) -> bool:
        p = self._pending.get(key)
        if p is None:
            return True
        if (not p.adds and not p.dels) or time.monotonic() - p.since > self.timeout:
            self._pending.pop(key, None)
            return True
        return False

    def expect_add(self, key: str, name: str) -> None:
        p = self._pending.setdefault(key, _Pending())
        p.adds.add(name)
        p.since = time.monotonic()

    def expect_delete(self, key: str, name: str) -> None:
        p = self._pending.setdefault(key, _Pending())
        p.dels.add(name)
        p.since = time.monotonic()

    def observed_add(self, key: str, name: str) -> None:
        p = self._pending.get(key)
        if p is not None:
            p.adds.discard(name)

    def observed_delete(self, key: str, name: str) -> None:
        p = self._pending.get(key)
        if p is not None:
            p.dels.discard(name)

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)
