"""A TCP forwarder from the host's loopback into a network namespace, with no route or rule.

`python -m pinnace.cluster.forward NETNS LISTEN_PORT TARGET_HOST:TARGET_PORT`: binds
127.0.0.1:LISTEN_PORT in the current (host) namespace, then moves itself into NETNS; the
listening socket stays in the host namespace while every outgoing connection is made inside
NETNS. Tests use it to reach a lab's store without adding host routes. Prints "ready" when
listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import sys

CLONE_NEWNET = 0x40000000


def setns_fd(fd: int, what: str = "") -> None:
    """Move this thread into the network namespace open as `fd`."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns into {what or fd}: {os.strerror(err)}")


def enter_netns(name: str) -> None:
    """Move into a named network namespace (or one given by its path, e.g. /run/netns/x)."""
    path = name if name.startswith("/") else f"/run/netns/{name}"
    fd = os.open(path, os.O_RDONLY)
    try:
        setns_fd(fd, name)
    finally:
        os.close(fd)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve(sock: socket.socket, host: str, port: int) -> None:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            tr, tw = await asyncio.open_connection(host, port)
        except OSError:
            w.close()
            return
        await asyncio.gather(_pipe(r, tw), _pipe(tr, w))

    srv = await asyncio.start_server(handle, sock=sock)
    print("ready", flush=True)
    async with srv:
        await srv.serve_forever()


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    netns, listen_port, target = args
    host, _, port = target.rpartition(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(listen_port)))
    sock.listen(128)
    enter_netns(netns)
    asyncio.run(serve(sock, host, int(port)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
