"""The proxy's sync loop: desired service ports in, iptables-restore out, rate-limited.

Per Service the rendered chains are cached. A sync after a few changes restores only the chains
that differ (plus PINNACE-SERVICES / -NODEPORTS when their lines changed) with --noflush; the
first sync, a periodic resync, an error or many changed services trigger a full sync: the whole
nat table rewritten in one plain iptables-restore (others' chains and rules read back from
iptables-save and kept), which also drops stale PINNACE-* chains left by an earlier run. Syncs run at most once per
`min_sync_period`, but a change after a quiet period is applied at once (kube-proxy's
BoundedFrequencyRunner with burst 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from services.netagent import metrics
from services.netagent.proxy import rules
from services.netagent.proxy.iptables import Iptables
from services.netagent.proxy.model import ServicePort


@dataclass
class _Rendered:
    chains: rules.Ruleset
    services: list[str]
    nodeports: list[str]


def _jumps(r: _Rendered | None) -> tuple[list[str], list[str]]:
    return (r.services, r.nodeports) if r is not None else ([], [])


@dataclass
class SyncStats:
    full: bool = False
    chains_written: int = 0
    chains_deleted: int = 0
    seconds: float = 0.0
    render_seconds: float = 0.0
    restore_seconds: float = 0.0
    syncs: int = 0
    errors: int = 0
    last_error: str = ""


@dataclass
class ProxySyncer:
    ipt: Iptables
    opts: rules.Options = field(default_factory=rules.Options)
    min_sync_period: float = 1.0
    full_resync_period: float = 3600.0
    full_sync_threshold: int = 200
    skip_ips: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self._desired: dict[str, list[ServicePort]] = {}
        self._rendered: dict[str, _Rendered] = {}
        self._dirty: set[str] = set()
        self._applied: rules.Ruleset = {}
        self._need_full = True
        self._last_sync = 0.0
        self._last_full = 0.0
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.stats = SyncStats()
        self.synced = asyncio.Event()

    # -- inputs (event loop) ---------------------------------------------------------------
    def set_service(self, key: str, ports: list[ServicePort]) -> None:
        if self._desired.get(key) == ports:
            return
        if ports:
            self._desired[key] = ports
        else:
            self._desired.pop(key, None)
        self._dirty.add(key)
        self._wake.set()

    def delete_service(self, key: str) -> None:
        self.set_service(key, [])

    def request_full_sync(self) -> None:
        self._need_full = True
        self._wake.set()

    # -- rendering -------------------------------------------------------------------------
    def _render(self, ports: list[ServicePort]) -> _Rendered:
        chains: rules.Ruleset = {}
        services: list[str] = []
        nodeports: list[str] = []
        for sp in ports:
            if sp.cluster_ip in self.skip_ips or not sp.endpoints:
                continue
            chains.update(rules.service_chains(sp, self.opts))
            services.append(rules.services_rule(sp))
            if sp.node_port:
                nodeports.append(rules.nodeport_rule(sp))
        return _Rendered(chains=chains, services=services, nodeports=nodeports)

    def _assemble_tops(self) -> rules.Ruleset:
        services: list[str] = []
        nodeports: list[str] = []
        for key in sorted(self._rendered):
            r = self._rendered[key]
            services.extend(r.services)
            nodeports.extend(r.nodeports)
        services.append(
            f'-A {rules.SERVICES} -m comment --comment "pinnace service nodeports" '
            f"-m addrtype --dst-type LOCAL -j {rules.NODEPORTS}"
        )
        tops: rules.Ruleset = dict(rules.static_chains(self.opts))
        tops[rules.SERVICES] = services
        tops[rules.NODEPORTS] = nodeports
        return tops

    def sync_now(self, dirty: dict[str, list[ServicePort]], full: bool) -> SyncStats:
        """Apply the given changes (key -> ports, [] = gone); blocking, run in a thread."""
        t0 = time.perf_counter()
        old_parts: dict[str, _Rendered | None] = {}
        for key, ports in dirty.items():
            old_parts[key] = self._rendered.get(key)
            if ports:
                self._rendered[key] = self._render(ports)
            else:
                self._rendered.pop(key, None)
        tops_changed = full or any(_jumps(old) != _jumps(self._rendered.get(key)) for key, old in old_parts.items())
        # The top-level chains (10k lines for 10k services) are rebuilt only when a jump changed.
        tops = self._assemble_tops() if tops_changed or not self._applied else {}
        if full:
            new: rules.Ruleset = {}
            for r in self._rendered.values():
                new.update(r.chains)
            new.update(tops)
            foreign = rules.parse_foreign(self.ipt.save_nat())
            t1 = time.perf_counter()
            payload = rules.full_table_payload(new, foreign)
            write_n, delete_n = len(new), 0
            t2 = time.perf_counter()
            self.ipt.restore(payload, noflush=False)
            self._applied = new
        else:
            write: list[str] = []
            delete: list[str] = []
            for key, old in old_parts.items():
                cur = self._rendered.get(key)
                cur_chains = cur.chains if cur else {}
                write.extend(c for c, rl in cur_chains.items() if self._applied.get(c) != rl)
                if old is not None:
                    delete.extend(c for c in old.chains if c not in cur_chains)
            write.extend(c for c, rl in tops.items() if self._applied.get(c) != rl)
            view: rules.Ruleset = dict(tops)
            for key in old_parts:
                cur = self._rendered.get(key)
                if cur:
                    view.update(cur.chains)
            t1 = time.perf_counter()
            payload = rules.restore_payload(view, write, delete)
            t2 = time.perf_counter()
            write_n, delete_n = len(write), len(delete)
            if write or delete:
                self.ipt.restore(payload)
            for c in write:
                self._applied[c] = view[c]
            for c in delete:
                self._applied.pop(c, None)
        t3 = time.perf_counter()
        self.stats = SyncStats(
            full=full,
            chains_written=write_n,
            chains_deleted=delete_n,
            seconds=t3 - t0,
            render_seconds=(t1 - t0) + (t2 - t1),
            restore_seconds=t3 - t2,
            syncs=self.stats.syncs + 1,
            errors=self.stats.errors,
        )
        return self.stats

    async def sync_once(self, full: bool | None = None) -> SyncStats:
        async with self._lock:
            if full is None:
                full = (
                    self._need_full
                    or len(self._dirty) > self.full_sync_threshold
                    or time.monotonic() - self._last_full > self.full_resync_period
                )
            dirty = {k: list(self._desired.get(k, [])) for k in self._dirty}
            if full:
                # A full sync re-renders nothing that is cached; it rewrites everything.
                pass
            self._dirty.clear()
            try:
                stats = await asyncio.to_thread(self.sync_now, dirty, full)
            except Exception as e:
                self._dirty.update(dirty)
                self._need_full = True
                self.stats.errors += 1
                metrics.PROXY_SYNC_ERRORS.inc()
                self.stats.last_error = str(e)
                raise
            metrics.PROXY_SYNC_SECONDS.labels("full" if full else "partial").observe(stats.seconds)
            self._last_sync = time.monotonic()
            if full:
                self._need_full = False
                self._last_full = self._last_sync
            self.synced.set()
            return stats

    async def run(self, log: object = None) -> None:
        """Sync whenever something changed, at most once per min_sync_period; never returns."""
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(1.0, self.full_resync_period / 10))
            self._wake.clear()
            wait = self.min_sync_period - (time.monotonic() - self._last_sync)
            if wait > 0:
                await asyncio.sleep(wait)
            if not (self._dirty or self._need_full or time.monotonic() - self._last_full > self.full_resync_period):
                continue
            try:
                await self.sync_once()
            except Exception as e:
                if log is not None:
                    log.warning("proxy sync failed", error=str(e))  # type: ignore[attr-defined]
                await asyncio.sleep(1.0)
                self._wake.set()

    async def cleanup(self) -> None:
        await asyncio.to_thread(self.ipt.remove_all)
