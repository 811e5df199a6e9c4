"""Helpers for node agent e2e tests: pod builders, waiting on status, the NodeAgent API."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from pinnace.api import nodelocal_pb2, nodelocal_pb2_grpc, pod_pb2
from pinnace.client import AsyncClient, errors


def make_pod(name: str, node: str, command: list[str], **kw: Any) -> pod_pb2.Pod:
    pod = pod_pb2.Pod()
    pod.metadata.name = name
    pod.metadata.namespace = "default"
    pod.spec.node_name = node
    pod.spec.termination_grace_period_seconds = kw.pop("grace", 2)
    if "restart_policy" in kw:
        pod.spec.restart_policy = kw.pop("restart_policy")
    c = pod.spec.containers.add(name=kw.pop("container", "main"), image=kw.pop("image", "busybox"))
    c.command.extend(command)
    for k, v in kw.pop("env", {}).items():
        c.env.add(name=k, value=v)
    assert not kw, kw
    return pod


def condition(pod: pod_pb2.Pod, ctype: str) -> str:
    for c in pod.status.conditions:
        if c.type == ctype:
            return c.status
    return ""


async def wait_pod(
    client: AsyncClient, name: str, pred: Callable[[pod_pb2.Pod], bool], timeout: float = 30, what: str = ""
) -> pod_pb2.Pod:
    deadline = time.monotonic() + timeout
    last: pod_pb2.Pod | None = None
    while time.monotonic() < deadline:
        try:
            last = await client.get(pod_pb2.Pod, name, "default")
            if pred(last):
                return last
        except errors.NotFound:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for pod {name} {what}; last status:\n{last.status if last else None}")


async def wait_gone(client: AsyncClient, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            await client.get(pod_pb2.Pod, name, "default")
        except errors.NotFound:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"pod {name} was not removed")


def ready(p: pod_pb2.Pod) -> bool:
    return condition(p, "Ready") == "True"


def running(p: pod_pb2.Pod) -> bool:
    return p.status.phase == "Running"


def netns_of(pod: pod_pb2.Pod) -> str:
    return "pn-" + pod.metadata.uid.replace("-", "")[:12]


def in_netns(ns: str, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout)


def pids_with_marker(marker: str) -> list[int]:
    """Processes whose command line contains marker."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        out.append(int(d))
            except OSError:
                pass
    return out


def nodeagent_stub(port: int) -> tuple[grpc.aio.Channel, nodelocal_pb2_grpc.NodeAgentStub]:
    ch = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    return ch, nodelocal_pb2_grpc.NodeAgentStub(ch)


async def logs(port: int, pod: str, **kw: Any) -> bytes:
    ch, stub = nodeagent_stub(port)
    try:
        out = b""
        async for chunk in stub.Logs(nodelocal_pb2.LogsRequest(namespace="default", pod=pod, **kw), timeout=10):
            out += chunk.data
        return out
    finally:
        await ch.close()


async def exec_(
    port: int, pod: str, command: list[str], stdin: bytes = b"", tty: bool = False
) -> tuple[int, bytes, bytes]:
    ch, stub = nodeagent_stub(port)

    async def requests() -> AsyncIterator[nodelocal_pb2.ExecInput]:
        yield nodelocal_pb2.ExecInput(
            start=nodelocal_pb2.ExecStart(namespace="default", pod=pod, command=command, tty=tty, stdin=bool(stdin))
        )
        if stdin:
            yield nodelocal_pb2.ExecInput(stdin=stdin)
            yield nodelocal_pb2.ExecInput(close_stdin=True)

    out, err, code = b"", b"", -1
    try:
        async for msg in stub.Exec(requests(), timeout=20):
            which = msg.WhichOneof("output")
            if which == "stdout":
                out += msg.stdout
            elif which == "stderr":
                err += msg.stderr
            else:
                code = msg.exit_code
    finally:
        await ch.close()
    return code, out, err
