"""RaftReplicator: the store's Replicator (docs/CONTRACTS.md "Store internals") on our raft.

`propose` on the leader goes straight into the raft loop; on a follower it is forwarded to
the leader with the Forward RPC and returns once this replica has applied that index too (so
a client reading its own write from the same replica sees it). `read_barrier` is a ReadIndex
round (batched). Without a leader for `leader_timeout` seconds both raise Unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import grpc
import structlog

from pinnace.api import raft_pb2, raft_pb2_grpc
from pinnace.common.tls import TLSConfig, server_credentials
from services.store.raft.node import NodeOptions, ProposalLost, RaftNode
from services.store.raft.transport import GRPC_OPTIONS, ForwardRejected, RaftPeerServicer
from services.store.raft.types import NotLeader
from services.store.replication import MemberStatus, ReplicaStatus, StateMachine, Unavailable

log = structlog.get_logger("raft.replicator")

FORWARD_BATCH = 1024
FORWARD_INFLIGHT = 8

# gRPC error details that mean the request never reached the server.
_NEVER_SENT = ("failed to connect", "Connection refused", "connections to all backends failing")


def parse_peers(spec: str) -> dict[int, str]:
    """ "1=host:port,2=host:port" -> {1: "host:port", 2: ...}."""
    out: dict[int, str] = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        nid, _, addr = part.partition("=")
        if not addr:
            raise ValueError(f"bad peer {part!r}: want id=host:port")
        out[int(nid)] = addr.strip()
    return out


def tls_identity(cfg: TLSConfig) -> str:
    """The CN of our own certificate: peers must present the same identity (e.g. "store")."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_pem_x509_certificate(cfg.cert)
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


class RaftReplicator:
    """Replicates a StateMachine over raft among `peers` (empty: a single replica)."""

    def __init__(
        self,
        state_machine: StateMachine,
        node_id: int,
        data_dir: str,
        peers: dict[int, str] | None = None,
        peer_listen: str = "",
        opts: NodeOptions | None = None,
        leader_timeout: float = 3.0,
        propose_timeout: float = 10.0,
        tls: TLSConfig | None = None,
    ) -> None:
        self.id = node_id
        self.peers = dict(peers or {})
        if self.peers and node_id not in self.peers:
            raise ValueError(f"--id {node_id} is not in --peers {sorted(self.peers)}")
        self.peer_listen = peer_listen or self.peers.get(node_id, "")
        self.tls = tls
        self.node = RaftNode(node_id, self.peers, data_dir, state_machine, opts, tls=tls)
        self.leader_timeout = leader_timeout
        self.propose_timeout = propose_timeout
        self._server: grpc.aio.Server | None = None
        self._fwd_q: list[tuple[bytes, asyncio.Future[tuple[int, bytes]]]] = []
        self._fwd_ev: asyncio.Event | None = None
        self._fwd_task: asyncio.Task[None] | None = None
        self._fwd_sem = asyncio.Semaphore(FORWARD_INFLIGHT)
        self._fwd_batches: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.node.start()
        if self.node.transport is not None:
            self._server = grpc.aio.server(options=GRPC_OPTIONS)
            servicer = RaftPeerServicer(
                self.node.snap_dir,
                self.node.deliver,
                self._forwarded,
                self._forwarded_batch,
                peer_identity=tls_identity(self.tls) if self.tls is not None else None,
            )
            raft_pb2_grpc.add_RaftPeerServicer_to_server(servicer, self._server)
            if self.tls is None:
                port = self._server.add_insecure_port(self.peer_listen)
            else:
                port = self._server.add_secure_port(self.peer_listen, server_credentials(self.tls))
            if port == 0:
                raise OSError(f"cannot listen on {self.peer_listen} for raft peers")
            await self._server.start()
            log.info("raft peer server listening", address=self.peer_listen)
            self._fwd_ev = asyncio.Event()
            self._fwd_task = asyncio.create_task(self._forwarder(), name="raft-forwarder")

    async def stop(self) -> None:
        if self._fwd_task is not None:
            self._fwd_task.cancel()
            with contextlib.suppress(BaseException):
                await self._fwd_task
        for _, fut in self._fwd_q:
            if not fut.done():
                fut.set_exception(Unavailable("store replica is stopping"))
        if self._server is not None:
            await self._server.stop(grace=0.5)
        await self.node.stop()

    async def _forwarded(self, data: bytes) -> tuple[int, bytes]:
        if not self.node.is_leader:
            raise ForwardRejected(f"replica {self.id} is not the leader (leader={self.node.leader})")
        try:
            return await self.node.propose(data)
        except NotLeader as e:
            raise ForwardRejected(str(e)) from e

    async def _forwarded_batch(self, items: list[bytes]) -> list[raft_pb2.ForwardResponse]:
        if not self.node.is_leader:
            why = f"replica {self.id} is not the leader (leader={self.node.leader})"
            return [raft_pb2.ForwardResponse(rejected=True, error=why) for _ in items]
        futs = self.node.propose_many(items)
        await asyncio.wait(futs)
        out: list[raft_pb2.ForwardResponse] = []
        for f in futs:
            e = f.exception()
            if e is None:
                index, result = f.result()
                out.append(raft_pb2.ForwardResponse(index=index, result=result))
            else:
                out.append(
                    raft_pb2.ForwardResponse(error=str(e) or type(e).__name__, rejected=isinstance(e, NotLeader))
                )
        return out

    async def _forwarder(self) -> None:
        """Ships queued follower proposals to the leader, many per ForwardBatch RPC."""
        assert self._fwd_ev is not None
        while True:
            await self._fwd_ev.wait()
            self._fwd_ev.clear()
            while self._fwd_q:
                await self._fwd_sem.acquire()
                batch = self._fwd_q[:FORWARD_BATCH]
                del self._fwd_q[:FORWARD_BATCH]
                t = asyncio.create_task(self._send_batch(batch))
                self._fwd_batches.add(t)
                t.add_done_callback(self._fwd_batches.discard)

    async def _send_batch(self, batch: list[tuple[bytes, asyncio.Future[tuple[int, bytes]]]]) -> None:
        try:
            lead = self.node.leader
            transport = self.node.transport
            if not lead or lead == self.id or transport is None:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(ForwardRejected("no remote leader"))
                return
            req = raft_pb2.ForwardBatchRequest(data=[d for d, _ in batch])
            try:
                resp = await transport.stub(lead).ForwardBatch(req, timeout=self.propose_timeout)
            except grpc.aio.AioRpcError as e:
                details = e.details() or ""
                err: Exception
                if e.code() == grpc.StatusCode.UNAVAILABLE and any(s in details for s in _NEVER_SENT):
                    err = ForwardRejected(details)
                else:
                    err = Unavailable(f"forwarding to leader {lead} failed: {e.code().name}: {details}")
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(err)
                return
            for (_, fut), r in zip(batch, resp.results, strict=True):
                if fut.done():
                    continue
                if r.rejected:
                    fut.set_exception(ForwardRejected(r.error))
                elif r.error:
                    fut.set_exception(Unavailable(f"leader {lead}: {r.error}"))
                else:
                    fut.set_result((r.index, r.result))
        finally:
            self._fwd_sem.release()

    async def propose(self, data: bytes) -> bytes:
        node = self.node
        deadline = time.monotonic() + self.propose_timeout
        no_leader_since: float | None = None
        while True:
            if node.stopped:
                raise Unavailable("store replica is stopping")
            lead = node.leader
            now = time.monotonic()
            if not lead:
                no_leader_since = no_leader_since or now
                if now - no_leader_since >= self.leader_timeout or now >= deadline:
                    raise Unavailable("no raft leader; retry")
                await node.wait_leader(min(self.leader_timeout, deadline - now))
                continue
            no_leader_since = None
            if lead == self.id:
                try:
                    return (await node.propose(data))[1]
                except NotLeader:
                    await asyncio.sleep(0.01)
                    continue
            fut: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
            self._fwd_q.append((data, fut))
            assert self._fwd_ev is not None
            self._fwd_ev.set()
            try:
                index, result = await fut
            except ForwardRejected:
                if time.monotonic() >= deadline:
                    raise Unavailable("no raft leader accepted the proposal; retry") from None
                await asyncio.sleep(0.02)
                continue
            try:
                await asyncio.wait_for(node.wait_applied(index), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                raise Unavailable(f"write committed at {index} but not applied here yet") from None
            return result

    async def read_barrier(self) -> None:
        node = self.node
        deadline = time.monotonic() + self.leader_timeout
        while True:
            if not node.leader:
                if not await node.wait_leader(max(0.0, deadline - time.monotonic())):
                    raise Unavailable("no raft leader; retry")
            try:  # asyncio.timeout, not wait_for: no extra task per read
                async with asyncio.timeout(max(0.05, deadline - time.monotonic())):
                    index = await node.read_index()
                break
            except TimeoutError:
                raise Unavailable("read index timed out; retry") from None
            except Unavailable:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.02)
        if node.applied >= index:
            return
        try:
            async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                await node.wait_applied(index)
        except TimeoutError:
            raise Unavailable("replica is catching up; retry") from None

    def status(self) -> ReplicaStatus:
        st = self.node.status()
        c = self.node.core
        members: list[MemberStatus] = []
        match = st.get("match") or {}
        assert isinstance(match, dict)
        transport = self.node.transport
        for p in self.node.voters:
            members.append(
                MemberStatus(
                    id=p,
                    address=self.peers.get(p, ""),
                    match_index=int(match.get(p, 0)),
                    reachable=p == self.id or (transport is not None and transport.is_reachable(p)),
                )
            )
        return ReplicaStatus(
            id=self.id,
            leader_id=c.lead if c else 0,
            term=c.term if c else 0,
            commit_index=c.log.committed if c else 0,
            applied_index=self.node.applied,
            role=c.role.value if c else "stopped",
            members=members,
        )


__all__ = ["ProposalLost", "RaftReplicator", "Unavailable", "parse_peers"]
