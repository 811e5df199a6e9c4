"""The NodeAgent gRPC service: container logs (tail, follow, previous) and exec (stdin, TTY, resize)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from pinnace.api import nodelocal_pb2, nodelocal_pb2_grpc
from pinnace.common.logging import get_logger
from services.nodeagent.runtimes.base import ContainerRecord, Runtime, Sandbox, StartError

log = get_logger("nodeagent.api")


@dataclass
class ContainerRef:
    """What the API needs to reach one container of a pod on this node."""

    sandbox: Sandbox | None
    record: ContainerRecord
    running: Callable[[], bool]


class LookupError_(Exception):
    """No such pod or container on this node (message says which)."""


Lookup = Callable[[str, str, str, bool], ContainerRef]


class NodeAgentService(nodelocal_pb2_grpc.NodeAgentServicer):
    def __init__(self, runtime: Runtime, lookup: Lookup) -> None:
        self.runtime = runtime
        self.lookup = lookup

    async def Logs(
        self, request: nodelocal_pb2.LogsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[nodelocal_pb2.LogChunk]:
        try:
            ref = self.lookup(request.namespace or "default", request.pod, request.container, request.previous)
        except LookupError_ as e:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(e))
            return
        alive = ref.running if request.follow and not request.previous else (lambda: False)
        async for data in self.runtime.logs(
            ref.record,
            request.follow and not request.previous,
            request.tail_lines if request.tail_lines else -1,
            request.timestamps,
            alive,
        ):
            yield nodelocal_pb2.LogChunk(data=data)

    async def Exec(
        self, request_iterator: AsyncIterator[nodelocal_pb2.ExecInput], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[nodelocal_pb2.ExecOutput]:
        it = request_iterator.__aiter__()
        try:
            first = await it.__anext__()
        except StopAsyncIteration:
            return
        if first.WhichOneof("input") != "start":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be start")
            return
        start = first.start
        if not start.command:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "command is empty")
            return
        try:
            ref = self.lookup(start.namespace or "default", start.pod, start.container, False)
            if ref.sandbox is None or not ref.running():
                raise LookupError_(f"container {ref.record.name} is not running")
            sess = await self.runtime.exec(ref.sandbox, ref.record, list(start.command), start.tty, start.stdin)
        except LookupError_ as e:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(e))
            return
        except (StartError, OSError) as e:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
            return

        async def pump_input() -> None:
            try:
                async for msg in it:
                    which = msg.WhichOneof("input")
                    if which == "stdin":
                        await sess.write_stdin(msg.stdin)
                    elif which == "close_stdin":
                        await sess.close_stdin()
                    elif which == "resize":
                        await sess.resize(msg.resize.rows, msg.resize.cols)
            except (asyncio.CancelledError, grpc.aio.AioRpcError):
                pass
            except Exception as e:
                log.debug("exec input ended", error=str(e))

        pump = asyncio.create_task(pump_input())
        try:
            async for stream, data in sess.output():
                if stream == "stdout":
                    yield nodelocal_pb2.ExecOutput(stdout=data)
                else:
                    yield nodelocal_pb2.ExecOutput(stderr=data)
            code = await sess.wait()
            yield nodelocal_pb2.ExecOutput(exit_code=code)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            with contextlib.suppress(Exception):
                if sess is not None:
                    await asyncio.wait_for(sess.wait(), 0.01)
            with contextlib.suppress(Exception):
                await sess.kill()
