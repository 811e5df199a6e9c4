"""Proxy syncer: full first, then only changed chains; stale chains removed on full sync."""

from __future__ import annotations

from services.netagent.proxy import rules
from services.netagent.proxy.model import Endpoint, ServicePort
from services.netagent.proxy.syncer import ProxySyncer


class FakeIptables:
    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.existing = ["PINNACE-SVC-STALE"]

    def restore(self, payload: str) -> None:
        self.payloads.append(payload)

    def our_chains(self) -> list[str]:
        return self.existing

    def ensure_jumps(self) -> None:
        pass


def _sp(name: str, ips: list[str]) -> ServicePort:
    return ServicePort("default", name, "", "tcp", "10.96.0.5", 80, endpoints=tuple(Endpoint(i, 80) for i in ips))


async def test_full_then_partial():
    ipt = FakeIptables()
    s = ProxySyncer(ipt, rules.Options(), min_sync_period=0)  # type: ignore[arg-type]
    for i in range(5):
        s.set_service(f"default/s{i}", [_sp(f"s{i}", [f"10.244.1.{i + 2}"])])
    st = await s.sync_once()
    assert st.full and "-X PINNACE-SVC-STALE" in ipt.payloads[-1]
    s.set_service("default/s3", [_sp("s3", ["10.244.1.5", "10.244.2.5"])])
    st = await s.sync_once()
    assert not st.full
    p = ipt.payloads[-1]
    declared = [line for line in p.splitlines() if line.startswith(":")]
    # The service chain and one new endpoint chain; nothing else.
    assert len(declared) == 2, declared
    assert rules.SERVICES not in p
    s.delete_service("default/s3")
    await s.sync_once()
    p = ipt.payloads[-1]
    assert p.count("-X PINNACE-") == 3 and f":{rules.SERVICES}" in p
