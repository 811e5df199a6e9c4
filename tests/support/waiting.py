"""Polling helpers for tests: wait until a condition holds, and say what was last seen if it never does."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pinnace.client import errors

T = TypeVar("T")

# Failures that mean "not yet" while polling a cluster that is still converging.
TRANSIENT: tuple[type[BaseException], ...] = (AssertionError, errors.PinnaceError, subprocess.SubprocessError)


def eventually(fn: Callable[[], T], timeout: float = 60, what: str = "", interval: float = 0.5) -> T:
    """fn()'s first truthy result; AssertionError naming `what` and the last result or error on timeout."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = fn()
            if result:
                return result
            last = result
        except TRANSIENT as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what or fn}: {last!r}")


async def eventually_async(
    fn: Callable[[], Awaitable[T] | T], timeout: float = 20, what: str = "", interval: float = 0.05
) -> T:
    """The asyncio form of `eventually`; fn may return a value or an awaitable."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = fn()
            if isinstance(result, Awaitable):
                result = await result
            if result:
                return result  # type: ignore[return-value]
            last = result
        except TRANSIENT as exc:
            last = exc
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what or fn}: {last!r}")
