"""Proxy syncer: full first, then only changed chains; stale chains removed on full sync."""

from __future__ import annotations

from services.netagent.proxy import rules
from services.netagent.proxy.model import Endpoint, ServicePort
from services.netagent.proxy.syncer import ProxySyncer


class FakeIptables:
    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.noflush: list[bool] = []

    def restore(self, payload: str, noflush: bool = True) -> None:
        self.payloads.append(payload)
        self.noflush.append(noflush)

    def save_nat(self) -> str:
        return (
            "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING DROP [0:0]\n"
            ":DOCKER - [0:0]\n:PINNACE-SVC-STALE - [0:0]\n"
            "-A PREROUTING -j DOCKER\n-A PREROUTING -j PINNACE-SERVICES\n-A DOCKER -p tcp -j RETURN\n"
            "-A PINNACE-SVC-STALE -j RETURN\nCOMMIT\n"
        )


def _sp(name: str, ips: list[str]) -> ServicePort:
    return ServicePort("default", name, "", "tcp", "10.96.0.5", 80, endpoints=tuple(Endpoint(i, 80) for i in ips))


async def test_full_then_partial():
    ipt = FakeIptables()
    s = ProxySyncer(ipt, rules.Options(), min_sync_period=0)  # type: ignore[arg-type]
    for i in range(5):
        s.set_service(f"default/s{i}", [_sp(f"s{i}", [f"10.244.1.{i + 2}"])])
    st = await s.sync_once()
    full = ipt.payloads[-1]
    assert st.full and ipt.noflush[-1] is False
    # Others' chains and rules survive, our stale chain does not, the jumps come first.
    assert ":DOCKER - [0:0]" in full and "-A DOCKER -p tcp -j RETURN" in full and "-A PREROUTING -j DOCKER" in full
    assert "PINNACE-SVC-STALE" not in full and ":POSTROUTING DROP" in full
    assert full.index("-j PINNACE-SERVICES") < full.index("-A PREROUTING -j DOCKER")
    assert full.count("-j PINNACE-SERVICES\n") == 2  # PREROUTING and OUTPUT, once each
    s.set_service("default/s3", [_sp("s3", ["10.244.1.5", "10.244.2.5"])])
    st = await s.sync_once()
    assert not st.full and ipt.noflush[-1] is True
    p = ipt.payloads[-1]
    declared = [line for line in p.splitlines() if line.startswith(":")]
    # The service chain and one new endpoint chain; nothing else.
    assert len(declared) == 2, declared
    assert rules.SERVICES not in p
    s.delete_service("default/s3")
    await s.sync_once()
    p = ipt.payloads[-1]
    assert p.count("-X PINNACE-") == 3 and f":{rules.SERVICES}" in p
