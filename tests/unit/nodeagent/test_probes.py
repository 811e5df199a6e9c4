"""Probe thresholds and the three probe handlers (exec through a callback, httpGet, tcpSocket)."""

from __future__ import annotations

import asyncio

from pinnace.api import pod_pb2
from services.nodeagent.probes import ProbeTarget, ProbeWorker, run_probe


async def _exec(argv: list[str], timeout: float) -> tuple[int, bytes]:
    return (0 if argv == ["true"] else 1), b""


def _target(port: int = 0) -> ProbeTarget:
    return ProbeTarget(netns_path="", pod_ip="127.0.0.1", ports={"http": port}, exec_fn=_exec)


def test_thresholds() -> None:
    p = pod_pb2.Probe(failure_threshold=2, success_threshold=2)
    w = ProbeWorker("readiness", p, _target(), lambda: None)
    assert w.result is False
    assert not w.observe(True, "")
    assert w.observe(True, "") and w.result is True
    assert not w.observe(False, "") and w.result is True
    assert w.observe(False, "") and w.result is False
    live = ProbeWorker("liveness", pod_pb2.Probe(), _target(), lambda: None)
    assert live.result is True and live.failure_threshold == 3 and live.period == 10


async def test_handlers() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        path_ok = True
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" if path_ok else b"")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        p = pod_pb2.Probe()
        p.http_get.port.str_val = "http"
        p.http_get.path = "/healthz"
        assert (await run_probe(p, _target(port)))[0]
        t = pod_pb2.Probe()
        t.tcp_socket.port.int_val = port
        assert (await run_probe(t, _target(port)))[0]
        e = pod_pb2.Probe()
        e.exec.command.append("true")
        assert (await run_probe(e, _target()))[0]
        e2 = pod_pb2.Probe()
        e2.exec.command.append("false")
        assert not (await run_probe(e2, _target()))[0]
    finally:
        server.close()
        await server.wait_closed()
    ok, msg = await run_probe(t, _target(port))
    assert not ok and msg
