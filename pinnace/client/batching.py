"""Write coalescing: concurrent writes from one client share Store.Batch calls.

A unary gRPC call costs a Python client and server far more than the write it carries, so
`WriteBatcher` sends a write at once when a call slot is free and otherwise queues it; when a
call returns, everything queued since leaves in the next one ("smart batching": no timer, a
lone write is never delayed, a busy client pays one call for many writes). Each op keeps its
own result or error, raised as a `grpc.RpcError` (`OpError`) so callers handle it exactly as
the error of its own call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc

from pinnace.api import object_pb2, store_pb2

MAX_INFLIGHT = 2
MAX_OPS = 500

_CODES = {c.value[0]: c for c in grpc.StatusCode}


class OpError(grpc.RpcError):
    """The error of one op of a Batch call, shaped like the error of a unary call."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[()]:
        return ()


def as_op(method: str, request: Any) -> store_pb2.BatchOp | None:
    """The BatchOp for a unary write (method name + request), None for anything else."""
    if method == "Create":
        return store_pb2.BatchOp(create=request)
    if method == "Update":
        return store_pb2.BatchOp(update=request)
    if method == "UpdateStatus":
        return store_pb2.BatchOp(update_status=request)
    if method == "Delete":
        return store_pb2.BatchOp(delete=request)
    return None


class WriteBatcher:
    """Coalesces writes to one store endpoint; `call(op, timeout)` resolves with that op's Object."""

    def __init__(
        self,
        send: Callable[[store_pb2.BatchRequest, float], Any],
        max_inflight: int = MAX_INFLIGHT,
        max_ops: int = MAX_OPS,
    ) -> None:
        self._send = send
        self.max_inflight = max_inflight
        self.max_ops = max_ops
        self._queue: list[tuple[store_pb2.BatchOp, asyncio.Future[object_pb2.Object]]] = []
        self._inflight = 0
        self._timeout = 10.0
        self._senders: set[asyncio.Task[None]] = set()
        self.calls = 0
        self.ops = 0

    async def call(self, op: store_pb2.BatchOp, timeout: float) -> object_pb2.Object:
        fut: asyncio.Future[object_pb2.Object] = asyncio.get_running_loop().create_future()
        self._queue.append((op, fut))
        self._timeout = timeout
        if self._inflight < self.max_inflight:
            self._inflight += 1
            task = asyncio.get_running_loop().create_task(self._sender())
            self._senders.add(task)
            task.add_done_callback(self._senders.discard)
        return await fut

    async def _sender(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self.max_ops]
                del self._queue[: self.max_ops]
                await self._one(batch)
        finally:
            self._inflight -= 1

    async def _one(self, batch: list[tuple[store_pb2.BatchOp, asyncio.Future[object_pb2.Object]]]) -> None:
        self.calls += 1
        self.ops += len(batch)
        try:
            resp = await self._send(store_pb2.BatchRequest(ops=[op for op, _ in batch]), self._timeout)
        except grpc.RpcError as e:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(e)
            return
        except BaseException as e:  # cancelled or broken channel: never leave a caller hanging
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(e)
            raise
        results = resp.results
        if len(results) != len(batch):
            err = OpError(grpc.StatusCode.INTERNAL, f"store answered {len(results)} results for {len(batch)} ops")
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(err)
            return
        for (_, fut), r in zip(batch, results, strict=True):
            if fut.done():
                continue
            if r.code == 0:
                fut.set_result(r.object)
            else:
                fut.set_exception(OpError(_CODES.get(r.code, grpc.StatusCode.UNKNOWN), r.message))
