"""ExecSession over a local process (nsenter into the container), with or without a TTY."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import termios
import time
from collections.abc import AsyncIterator

from services.nodeagent import fdwait
from services.nodeagent.runtimes.base import ExecSession


class ProcessExec(ExecSession):
    """A child process; with tty=True it runs on a pseudo terminal (stdout carries both streams)."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int | None) -> None:
        self.proc = proc
        self.master = master

    @classmethod
    async def start(cls, argv: list[str], env: dict[str, str], tty: bool, stdin: bool) -> ProcessExec:
        if tty:
            master, slave = os.openpty()
            try:
                # setsid -c: new session with the pty as controlling terminal (no preexec_fn: fork
                # handlers of gRPC's threads make preexec_fn unsafe here)
                proc = await asyncio.create_subprocess_exec(
                    "setsid", "-c", *argv, stdin=slave, stdout=slave, stderr=slave, env=env or None
                )
            finally:
                os.close(slave)
            os.set_blocking(master, False)
            return cls(proc, master)
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env or None,
            start_new_session=True,
        )
        return cls(proc, None)

    async def write_stdin(self, data: bytes) -> None:
        if self.master is not None:
            _write_fd(self.master, data)
            return
        if self.proc.stdin is not None:
            self.proc.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.master is not None:
            _write_fd(self.master, b"\x04")
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    async def resize(self, rows: int, cols: int) -> None:
        if self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def output(self) -> AsyncIterator[tuple[str, bytes]]:
        if self.master is not None:
            while True:
                await fdwait.readable(self.master)
                try:
                    data = os.read(self.master, 65536)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: the terminal's last user is gone
                    return
                if not data:
                    return
                yield "stdout", data
        queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()

        async def pump(name: str, reader: asyncio.StreamReader | None) -> None:
            if reader is not None:
                while True:
                    chunk = await reader.read(65536)
                    if not chunk:
                        break
                    await queue.put((name, chunk))
            await queue.put(None)

        tasks = [
            asyncio.create_task(pump("stdout", self.proc.stdout)),
            asyncio.create_task(pump("stderr", self.proc.stderr)),
        ]
        open_streams = 2
        try:
            while open_streams:
                item = await queue.get()
                if item is None:
                    open_streams -= 1
                    continue
                yield item
        finally:
            for t in tasks:
                t.cancel()

    async def wait(self) -> int:
        code = await self.proc.wait()
        if self.master is not None:
            with contextlib.suppress(OSError):
                os.close(self.master)
            self.master = None
        return code if code >= 0 else 128 - code

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            time.sleep(0.001)
            continue
        view = view[n:]
