"""Peer transport over gRPC (grpc.aio): one long-lived client stream per peer carrying batches
of raft messages, snapshot transfers in chunks, and the Forward RPC.

Sending never blocks the raft loop: messages are queued per peer and a sender task per peer
drains its queue into one RaftBatch per write (so bursts coalesce), reconnecting with backoff.
A stream that ends is reopened before the next write (so what was queued meanwhile is not lost
with it). Messages whose write failed are dropped; raft retransmits them (a forwarded ReadIndex
is not retransmitted: that read times out and its caller retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import structlog

from pinnace.api import raft_pb2, raft_pb2_grpc
from pinnace.common import tls as tlsmod
from services.store.raft.codec import message_from_pb, message_to_pb
from services.store.raft.types import Message, MsgType, SnapshotMeta

log = structlog.get_logger("raft.transport")

CHUNK = 1 << 20
MAX_QUEUE = 20_000
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", 64 << 20),
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    # Server side: accept the clients' 10 s keepalive pings on idle links (gRPC's default minimum
    # is 5 minutes, after which it answers GOAWAY too_many_pings and drops the peer connection).
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
]

MessageHandler = Callable[[list[Message]], None]
ForwardHandler = Callable[[bytes], Awaitable[tuple[int, bytes]]]
BatchForwardHandler = Callable[[list[bytes]], Awaitable[list[raft_pb2.ForwardResponse]]]


def snapshot_path(snap_dir: str, meta: SnapshotMeta) -> str:
    return os.path.join(snap_dir, f"snap-{meta.index:020d}-{meta.term:020d}.db")


class StreamEnded(Exception):
    """An outgoing peer stream ended before a write (reconnect; queued messages stay queued)."""


class ForwardRejected(Exception):
    """The peer is not the leader and did not propose (safe to retry elsewhere)."""


class PeerTransport:
    """Outgoing side: queues, sender tasks and channels to every other replica."""

    def __init__(self, node_id: int, peers: dict[int, str], snap_dir: str, tls: tlsmod.TLSConfig | None = None) -> None:
        self.id = node_id
        self.tls = tls
        self.peers = {p: a for p, a in peers.items() if p != node_id}
        self.snap_dir = snap_dir
        self.on_snapshot_status: Callable[[int, bool], None] = lambda _to, _ok: None
        self.on_unreachable: Callable[[int], None] = lambda _to: None
        self._queues: dict[int, list[raft_pb2.RaftMessage]] = {p: [] for p in self.peers}
        self._events: dict[int, asyncio.Event] = {}
        self._channels: dict[int, grpc.aio.Channel] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._snap_tasks: set[asyncio.Task[None]] = set()
        self.reachable: dict[int, bool] = dict.fromkeys(self.peers, False)

    async def start(self) -> None:
        for p, addr in self.peers.items():
            if self.tls is None:
                self._channels[p] = grpc.aio.insecure_channel(addr, options=GRPC_OPTIONS)
            else:
                opts = [*GRPC_OPTIONS, ("grpc.ssl_target_name_override", tlsmod.SERVER_NAME)]
                self._channels[p] = grpc.aio.secure_channel(addr, tlsmod.channel_credentials(self.tls), options=opts)
            self._events[p] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._sender(p), name=f"raft-send-{p}"))

    async def stop(self) -> None:
        for t in [*self._tasks, *self._snap_tasks]:
            t.cancel()
        for t in [*self._tasks, *self._snap_tasks]:
            with contextlib.suppress(BaseException):
                await t
        for ch in self._channels.values():
            await ch.close()

    def is_reachable(self, peer: int) -> bool:
        """Our last write to the peer went through, or its channel is connected (a follower's
        stream to another follower carries nothing in a quiet term)."""
        if self.reachable.get(peer, False):
            return True
        ch = self._channels.get(peer)
        return ch is not None and ch.get_state(try_to_connect=False) is grpc.ChannelConnectivity.READY

    def stub(self, peer: int) -> raft_pb2_grpc.RaftPeerStub:
        return raft_pb2_grpc.RaftPeerStub(self._channels[peer])

    def send(self, msgs: list[Message]) -> None:
        touched: set[int] = set()
        for m in msgs:
            q = self._queues.get(m.to)
            if q is None:
                continue
            if m.type is MsgType.SNAP:
                t = asyncio.create_task(self._send_snapshot(m), name=f"raft-snap-{m.to}")
                self._snap_tasks.add(t)
                t.add_done_callback(self._snap_tasks.discard)
                continue
            if len(q) >= MAX_QUEUE:
                del q[: len(q) // 2]  # the peer is not keeping up; raft will retransmit
            q.append(message_to_pb(m))
            touched.add(m.to)
        for p in touched:
            self._events[p].set()

    async def _sender(self, peer: int) -> None:
        backoff = 0.05
        ev = self._events[peer]
        while True:
            call = None
            try:
                call = self.stub(peer).Stream()
                call.add_done_callback(lambda _c: ev.set())  # the stream ended: reconnect now
                while True:
                    await ev.wait()
                    ev.clear()
                    if call.done():  # before taking the queue: its messages go on the next stream
                        raise StreamEnded("the stream ended")
                    batch, self._queues[peer] = self._queues[peer], []
                    if batch:
                        await call.write(raft_pb2.RaftBatch(sender=self.id, to=peer, messages=batch))
                        self.reachable[peer] = True
                        backoff = 0.05
            except asyncio.CancelledError:
                if call is not None:
                    call.cancel()
                raise
            except Exception as e:
                if self.reachable[peer]:
                    log.info("peer stream broken", peer=peer, error=str(e)[:200])
                self.reachable[peer] = False
                if call is not None:
                    call.cancel()
                if not isinstance(e, StreamEnded):
                    self._queues[peer].clear()  # a write failed: the peer is likely gone (raft retransmits)
                self.on_unreachable(peer)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                ev.set()

    async def _send_snapshot(self, m: Message) -> None:
        assert m.snapshot is not None
        path = snapshot_path(self.snap_dir, m.snapshot)
        ok = False
        try:

            async def chunks() -> AsyncIterator[raft_pb2.SnapshotChunk]:
                first = message_to_pb(m)
                offset = 0
                with open(path, "rb") as f:
                    while True:
                        data = f.read(CHUNK)
                        last = len(data) < CHUNK
                        yield raft_pb2.SnapshotChunk(
                            sender=self.id,
                            to=m.to,
                            message=first,
                            offset=offset,
                            data=data,
                            last=last,
                        )
                        offset += len(data)
                        if last:
                            return

            resp = await self.stub(m.to).InstallSnapshot(chunks(), timeout=300)
            ok = resp.ok
            log.info("sent snapshot", peer=m.to, index=m.snapshot.index, ok=ok)
        except Exception as e:
            log.warning("snapshot transfer failed", peer=m.to, error=str(e)[:200])
        self.on_snapshot_status(m.to, ok)


class RaftPeerServicer(raft_pb2_grpc.RaftPeerServicer):
    """Incoming side: hands decoded messages to the node; stores snapshot files; Forward."""

    def __init__(
        self,
        snap_dir: str,
        on_messages: MessageHandler,
        forward: ForwardHandler,
        forward_batch: BatchForwardHandler,
        peer_identity: str | None = None,
    ) -> None:
        self.peer_identity = peer_identity  # with mutual TLS: only this certificate CN may talk raft
        self.snap_dir = snap_dir
        self.on_messages = on_messages
        self.forward = forward
        self.forward_batch = forward_batch

    async def _authorize(self, context: grpc.aio.ServicerContext) -> None:
        if self.peer_identity is None:
            return
        who = tlsmod.identity_of(context)
        if who != self.peer_identity:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, f"raft peers must be {self.peer_identity!r}, not {who!r}"
            )

    async def Stream(
        self, request_iterator: AsyncIterator[raft_pb2.RaftBatch], context: grpc.aio.ServicerContext
    ) -> raft_pb2.RaftStreamAck:
        await self._authorize(context)
        async for batch in request_iterator:
            self.on_messages([message_from_pb(m) for m in batch.messages])
        return raft_pb2.RaftStreamAck()

    async def InstallSnapshot(
        self, request_iterator: AsyncIterator[raft_pb2.SnapshotChunk], context: grpc.aio.ServicerContext
    ) -> raft_pb2.SnapshotAck:
        await self._authorize(context)
        os.makedirs(self.snap_dir, exist_ok=True)
        msg: Message | None = None
        tmp = ""
        f = None
        try:
            async for chunk in request_iterator:
                if msg is None:
                    msg = message_from_pb(chunk.message)
                    assert msg.snapshot is not None
                    tmp = snapshot_path(self.snap_dir, msg.snapshot) + f".recv{os.getpid()}"
                    f = open(tmp, "wb")
                assert f is not None
                if chunk.offset != f.tell():
                    return raft_pb2.SnapshotAck(ok=False)
                f.write(chunk.data)
                if chunk.last:
                    break
            if msg is None or f is None or msg.snapshot is None:
                return raft_pb2.SnapshotAck(ok=False)
            f.flush()
            os.fsync(f.fileno())
            f.close()
            f = None
            os.replace(tmp, snapshot_path(self.snap_dir, msg.snapshot))
            tmp = ""
        finally:
            if f is not None:
                f.close()
            if tmp and os.path.exists(tmp):
                os.unlink(tmp)
        self.on_messages([msg])
        return raft_pb2.SnapshotAck(ok=True)

    async def Forward(
        self, request: raft_pb2.ForwardRequest, context: grpc.aio.ServicerContext
    ) -> raft_pb2.ForwardResponse:
        await self._authorize(context)
        try:
            index, result = await self.forward(request.data)
        except ForwardRejected as e:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(e))
        except Exception as e:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"proposal outcome unknown: {e}")
        return raft_pb2.ForwardResponse(index=index, result=result)

    async def ForwardBatch(
        self, request: raft_pb2.ForwardBatchRequest, context: grpc.aio.ServicerContext
    ) -> raft_pb2.ForwardBatchResponse:
        await self._authorize(context)
        return raft_pb2.ForwardBatchResponse(results=await self.forward_batch(list(request.data)))
