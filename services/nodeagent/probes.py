"""Probes and hook actions: exec, httpGet and tcpSocket, with Kubernetes' thresholds and timing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pinnace.api import meta_pb2, pod_pb2
from services.nodeagent import netnssock

ExecFn = Callable[[list[str], float], Awaitable[tuple[int, bytes]]]


@dataclass
class ProbeTarget:
    """Where a probe runs: the pod's netns and IP, the container's ports, and how to exec in it."""

    netns_path: str
    pod_ip: str
    ports: dict[str, int]
    exec_fn: ExecFn


def resolve_port(port: meta_pb2.IntOrString, named: dict[str, int]) -> int:
    if port.WhichOneof("value") == "int_val":
        return port.int_val
    text = port.str_val
    if text.isdigit():
        return int(text)
    if text in named:
        return named[text]
    raise ValueError(f"unknown named port {text!r}")


async def http_get(action: pod_pb2.HTTPGetAction, target: ProbeTarget, timeout: float) -> tuple[bool, str]:
    host = action.host or target.pod_ip or "127.0.0.1"
    port = resolve_port(action.port, target.ports)
    if (action.scheme or "HTTP").upper() == "HTTPS":
        return False, "HTTPS probes are not supported"
    path = action.path or "/"
    reader, writer = await netnssock.open_connection(target.netns_path, host, port, timeout)
    try:
        headers = {"Host": f"{host}:{port}", "User-Agent": "pinnace-probe/1.0", "Accept": "*/*", "Connection": "close"}
        for h in action.http_headers:
            headers[h.name] = h.value
        req = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(req.encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        parts = line.decode(errors="replace").split()
        code = int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
        return 200 <= code < 400, f"HTTP probe status {code}"
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def tcp_socket(action: pod_pb2.TCPSocketAction, target: ProbeTarget, timeout: float) -> tuple[bool, str]:
    host = action.host or target.pod_ip or "127.0.0.1"
    port = resolve_port(action.port, target.ports)
    _, writer = await netnssock.open_connection(target.netns_path, host, port, timeout)
    writer.close()
    return True, ""


async def run_action(
    exec_action: pod_pb2.ExecAction | None,
    http: pod_pb2.HTTPGetAction | None,
    tcp: pod_pb2.TCPSocketAction | None,
    target: ProbeTarget,
    timeout: float,
) -> tuple[bool, str]:
    """Run one handler; (success, message). Any error is a failure."""
    try:
        if exec_action is not None and exec_action.command:
            code, out = await target.exec_fn(list(exec_action.command), timeout)
            return code == 0, out.decode(errors="replace")[-1024:] if code else ""
        if http is not None:
            return await asyncio.wait_for(http_get(http, target, timeout), timeout + 0.5)
        if tcp is not None:
            return await asyncio.wait_for(tcp_socket(tcp, target, timeout), timeout + 0.5)
        return False, "probe has no handler"
    except TimeoutError:
        return False, f"probe timed out after {timeout:g}s"
    except Exception as e:
        return False, f"{type(e).__name__}: {e}"


async def run_probe(probe: pod_pb2.Probe, target: ProbeTarget) -> tuple[bool, str]:
    timeout = float(probe.timeout_seconds if probe.HasField("timeout_seconds") else 1) or 1.0
    return await run_action(
        probe.exec if probe.HasField("exec") else None,
        probe.http_get if probe.HasField("http_get") else None,
        probe.tcp_socket if probe.HasField("tcp_socket") else None,
        target,
        timeout,
    )


async def run_handler(h: pod_pb2.LifecycleHandler, target: ProbeTarget, timeout: float) -> tuple[bool, str]:
    """A postStart/preStop handler (sleep included)."""
    if h.HasField("sleep"):
        await asyncio.sleep(min(float(h.sleep.seconds), timeout))
        return True, ""
    return await run_action(
        h.exec if h.HasField("exec") else None,
        h.http_get if h.HasField("http_get") else None,
        h.tcp_socket if h.HasField("tcp_socket") else None,
        target,
        timeout,
    )


class ProbeWorker:
    """Runs one probe periodically and keeps its thresholded result.

    kind: "liveness" (starts healthy), "readiness" (starts not ready), "startup" (starts not started).
    on_change() is called whenever the result flips.
    """

    def __init__(
        self,
        kind: str,
        probe: pod_pb2.Probe,
        target: ProbeTarget,
        on_change: Callable[[], None],
        runner: Callable[[pod_pb2.Probe, ProbeTarget], Awaitable[tuple[bool, str]]] = run_probe,
    ) -> None:
        self.kind = kind
        self.probe = probe
        self.target = target
        self.on_change = on_change
        self.runner = runner
        self.result = kind == "liveness"
        self.message = ""
        self.successes = 0
        self.failures = 0
        self.period = float(probe.period_seconds if probe.HasField("period_seconds") else 10) or 10.0
        self.success_threshold = probe.success_threshold if probe.HasField("success_threshold") else 1
        self.failure_threshold = probe.failure_threshold if probe.HasField("failure_threshold") else 3
        self.task: asyncio.Task[None] | None = None
        self.done = False  # startup probes stop once they succeed

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop(), name=f"probe-{self.kind}")

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    def observe(self, ok: bool, message: str) -> bool:
        """Feed one probe outcome; True if the thresholded result changed."""
        if ok:
            self.successes += 1
            self.failures = 0
        else:
            self.failures += 1
            self.successes = 0
        self.message = message
        old = self.result
        if ok and self.successes >= max(1, self.success_threshold):
            self.result = True
        elif not ok and self.failures >= max(1, self.failure_threshold):
            self.result = False
        return old != self.result

    async def _loop(self) -> None:
        await asyncio.sleep(max(0, self.probe.initial_delay_seconds))
        while True:
            started = time.monotonic()
            ok, message = await self.runner(self.probe, self.target)
            changed = self.observe(ok, message)
            if changed or (self.kind == "startup" and self.failures >= self.failure_threshold):
                self.on_change()
            if self.kind == "startup" and self.result:
                self.done = True
                return
            await asyncio.sleep(max(0.0, self.period - (time.monotonic() - started)))
