"""The per-node SLA probe: `python -m services.sla.prober --node-name N --store ADDR`.

Runs in the node's network namespace. For each ApiSla it sends a steady stream of requests to
the SLA's Service through its ClusterIP — the path a real client's request takes, iptables
balancing included — at `probeRate` requests per second for every ready selected pod on this node,
measures each one end to end, and every couple of seconds pushes the histogram to the active
SLA controller (found through its Lease).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import sys
import time

import grpc
import numpy as np

from pinnace.api import cluster_pb2, pod_pb2, service_pb2, sla_pb2, sla_pb2_grpc
from pinnace.client import AsyncClient, Informer, errors
from pinnace.common import config, tls
from pinnace.common.logging import get_logger, setup_logging
from pinnace.common.selectors import selector_from_map
from services.sla.histogram import BOUNDS_MS, bucket_of, empty_counts

log = get_logger("sla-prober")
REPORT_EVERY = 2.0
TIMEOUT = 5.0


async def http_probe(host: str, port: int, path: str, timeout: float = TIMEOUT) -> float:
    """One HTTP/1.0 GET; seconds until the whole response arrived. Raises on error or non-2xx/3xx."""
    start = time.perf_counter()

    async def go() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: pinnace-sla-probe\r\n\r\n".encode())
            await writer.drain()
            status = await reader.readline()
            parts = status.split()
            if len(parts) < 2 or not parts[1].startswith((b"2", b"3")):
                raise ConnectionError(f"HTTP status {status!r}")
            await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    await asyncio.wait_for(go(), timeout)
    return time.perf_counter() - start


async def tcp_probe(host: str, port: int, timeout: float = TIMEOUT) -> float:
    start = time.perf_counter()
    _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    writer.close()
    return time.perf_counter() - start


class Prober:
    def __init__(self, client: AsyncClient, node: str, cfg: tls.TLSConfig | None) -> None:
        self.client = client
        self.node = node
        self.cfg = cfg
        self.slas = Informer(client, sla_pb2.ApiSla)
        self.services = Informer(client, service_pb2.Service)
        self.pods = Informer(client, pod_pb2.Pod, field_selector=f"spec.nodeName={node}")
        self.counts: dict[str, np.ndarray] = {}
        self.errors: dict[str, int] = {}
        self.window_start = time.time()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.inflight: set[asyncio.Future[None]] = set()
        self.error_kinds: collections.Counter[str] = collections.Counter()
        self._channel: grpc.aio.Channel | None = None
        self._channel_addr = ""

    def _service_for(self, sla: sla_pb2.ApiSla) -> service_pb2.Service | None:
        ns = sla.metadata.namespace
        if sla.spec.service:
            return self.services.get_by_name(sla.spec.service, ns)
        want = dict(sla.spec.selector)
        for svc in self.services.list(namespace=ns):
            if svc.spec.selector and selector_from_map(svc.spec.selector).matches(want):
                return svc
        return None

    def _local_pods(self, sla: sla_pb2.ApiSla) -> int:
        sel = selector_from_map(sla.spec.selector)
        return sum(
            1
            for p in self.pods.list(namespace=sla.metadata.namespace)
            if sel.matches(p.metadata.labels)
            and p.status.phase == "Running"
            and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions)
            and not p.metadata.HasField("deletion_timestamp")
        )

    async def _probe_loop(self, key: str) -> None:
        next_at = time.monotonic()
        while True:
            sla = self.slas.get(key)
            if sla is None:
                return
            svc = self._service_for(sla)
            pods = self._local_pods(sla)
            rate = (sla.spec.probe_rate if sla.spec.HasField("probe_rate") else 4.0) * pods
            if svc is None or pods == 0 or rate <= 0 or svc.spec.cluster_ip in ("", "None"):
                await asyncio.sleep(1.0)
                next_at = time.monotonic()
                continue
            port = sla.spec.probe.port or (svc.spec.ports[0].port if svc.spec.ports else 80)
            task = asyncio.ensure_future(self._one(key, svc.spec.cluster_ip, port, sla.spec.probe))
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)
            next_at += 1.0 / rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def _one(self, key: str, host: str, port: int, probe: sla_pb2.SlaProbe) -> None:
        try:
            if probe.tcp:
                took = await tcp_probe(host, port)
            else:
                took = await http_probe(host, port, probe.path or "/")
        except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
            self.errors[key] = self.errors.get(key, 0) + 1
            self.error_kinds[type(exc).__name__] += 1
            return
        counts = self.counts.setdefault(key, empty_counts())
        counts[bucket_of(took * 1000)] += 1

    def _sync_tasks(self) -> None:
        keys = {f"{s.metadata.namespace}/{s.metadata.name}" for s in self.slas.list()}
        for key in keys - set(self.tasks):
            self.tasks[key] = asyncio.create_task(self._probe_loop(key))
        for key in set(self.tasks) - keys:
            self.tasks.pop(key).cancel()

    async def _collector_address(self) -> str | None:
        try:
            lease = await self.client.get(cluster_pb2.Lease, "sla-controller", "pinnace-system")
        except errors.NotFound:
            return None
        holder = lease.spec.holder_identity
        return holder.split("@", 1)[1] if holder.startswith("sla@") else None

    async def _report(self) -> None:
        addr = await self._collector_address()
        counts, errs, start = self.counts, self.errors, self.window_start
        self.counts, self.errors, self.window_start = {}, {}, time.time()
        if self.error_kinds:
            log.info("probe errors", errors=dict(self.error_kinds))
            self.error_kinds.clear()
        if addr is None:
            return
        stub = sla_pb2_grpc.SlaCollectorStub(await self._channel_to(addr))
        for key in set(counts) | set(errs):
            ns, name = key.split("/", 1)
            rep = sla_pb2.SlaReport(
                node=self.node,
                namespace=ns,
                sla=name,
                bucket_bounds_ms=list(BOUNDS_MS),
                bucket_counts=[int(x) for x in counts.get(key, empty_counts())],
                errors=errs.get(key, 0),
            )
            rep.window_start.FromSeconds(int(start))
            rep.window_end.GetCurrentTime()
            try:
                await stub.Report(rep, timeout=3)
            except grpc.aio.AioRpcError as exc:
                log.warning("report failed", sla=key, code=exc.code().name)

    async def _channel_to(self, addr: str) -> grpc.aio.Channel:
        """One channel to the active controller, replaced when the leader moves."""
        if self._channel is None or self._channel_addr != addr:
            if self._channel is not None:
                await self._channel.close()
            self._channel, self._channel_addr = tls.secure_aio_channel(addr, self.cfg), addr
        return self._channel

    async def run(self, stop: asyncio.Event) -> None:
        for inf in (self.slas, self.services, self.pods):
            await inf.start()
        for inf in (self.slas, self.services, self.pods):
            await inf.wait_synced()
        while not stop.is_set():
            self._sync_tasks()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REPORT_EVERY)
            try:
                await self._report()
            except errors.PinnaceError as exc:
                log.warning("cannot report", error=str(exc))
        for t in self.tasks.values():
            t.cancel()
        for inf in (self.slas, self.services, self.pods):
            await inf.stop()
        if self._channel is not None:
            await self._channel.close()


def main(argv: list[str] | None = None) -> int:
    p = config.EnvDefaultsParser(prog="python -m services.sla.prober", description=__doc__)
    config.add_common_args(p)
    p.add_argument("--node-name", required=True)
    ns = p.parse_args(argv)
    setup_logging("sla-prober", ns.log_level, ns.log_format)
    cfg = tls.load_optional(ns.tls_dir, ns.tls_name or f"node-{ns.node_name}")

    async def amain() -> None:
        client = AsyncClient(config.store_endpoints(ns), cfg)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Prober(client, ns.node_name, cfg).run(stop)
        await client.close()

    asyncio.run(amain())
    return 0


if __name__ == "__main__":
    sys.exit(main())
