"""Await readability of a file descriptor (pipes, pidfds, ptys) on the running event loop."""

from __future__ import annotations

import asyncio


async def readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await fut
    finally:
        loop.remove_reader(fd)
