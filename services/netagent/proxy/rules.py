"""kube-proxy's nat-table layout, rendered as iptables-restore input (pure, no I/O).

Chains: PINNACE-SERVICES (one jump per service port, then NodePorts for local addresses),
PINNACE-SVC-<hash> (affinity checks, then `statistic --mode random` balancing over endpoints),
PINNACE-SEP-<hash> (hairpin masquerade mark, DNAT), PINNACE-EXT-<hash> (NodePort: mark for
masquerade, then the service chain), PINNACE-NODEPORTS, PINNACE-MARK-MASQ and
PINNACE-POSTROUTING (masquerade what is marked; pod egress leaving the cluster CIDR).

`Ruleset` maps chain name -> rule lines; `restore_payload` renders either everything or just
the chains that differ from what was applied last (iptables-restore --noflush: a declared
chain is flushed and rewritten, undeclared chains are left alone, stale ones are deleted).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from services.netagent.proxy.model import ServicePort

SERVICES = "PINNACE-SERVICES"
NODEPORTS = "PINNACE-NODEPORTS"
POSTROUTING = "PINNACE-POSTROUTING"
MARK_MASQ = "PINNACE-MARK-MASQ"
PREFIX = "PINNACE-"
MASQ_MARK = "0x4000/0x4000"
# Jumps from the built-in chains; ensured separately since --noflush never touches built-ins.
JUMPS = [
    ("PREROUTING", SERVICES, "pinnace service portals"),
    ("OUTPUT", SERVICES, "pinnace service portals"),
    ("POSTROUTING", POSTROUTING, "pinnace postrouting rules"),
]

Ruleset = dict[str, list[str]]


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _hash(text: str) -> str:
    """kube-proxy's chain suffix: the first 16 base32 characters of the text's sha256."""
    n = int.from_bytes(hashlib.sha256(text.encode()).digest()[:10], "big")  # 80 bits = 16 symbols
    return "".join(_B32[(n >> (75 - 5 * i)) & 31] for i in range(16))


def svc_chain(sp: ServicePort) -> str:
    return "PINNACE-SVC-" + _hash(sp.key + sp.protocol)


def ext_chain(sp: ServicePort) -> str:
    return "PINNACE-EXT-" + _hash(sp.key + sp.protocol)


def sep_chain(sp: ServicePort, ip: str, port: int) -> str:
    return "PINNACE-SEP-" + _hash(f"{sp.key}{sp.protocol}{ip}:{port}")


@dataclass(frozen=True)
class Options:
    cluster_cidr: str = "10.244.0.0/16"
    masquerade_egress: bool = True


def static_chains(opts: Options) -> Ruleset:
    post = [
        f"-A {POSTROUTING} -m mark ! --mark {MASQ_MARK} -j RETURN",
        f"-A {POSTROUTING} -j MARK --xor-mark 0x4000",
        f'-A {POSTROUTING} -m comment --comment "pinnace service traffic requiring SNAT" -j MASQUERADE',
    ]
    if opts.masquerade_egress:
        # Pods leaving the cluster CIDR go out as the node (flannel's ip-masq).
        post.insert(
            0,
            f"-A {POSTROUTING} -s {opts.cluster_cidr} ! -d {opts.cluster_cidr} "
            f'-m comment --comment "pod egress" -j MASQUERADE',
        )
    return {MARK_MASQ: [f"-A {MARK_MASQ} -j MARK --or-mark 0x4000"], POSTROUTING: post}


def service_chains(sp: ServicePort, opts: Options) -> Ruleset:
    """The SVC, SEP (and EXT) chains for one service port."""
    out: Ruleset = {}
    if not sp.endpoints:
        return out
    svc = svc_chain(sp)
    p = sp.protocol
    rules = [
        f"-A {svc} ! -s {opts.cluster_cidr} -d {sp.cluster_ip}/32 -p {p} -m {p} --dport {sp.port} -j {MARK_MASQ}",
    ]
    seps = [sep_chain(sp, e.ip, e.port) for e in sp.endpoints]
    if sp.affinity_timeout > 0:
        for sep in seps:
            rules.append(
                f"-A {svc} -m recent --name {sep} --mask 255.255.255.255 --rcheck "
                f"--seconds {sp.affinity_timeout} --reap -j {sep}"
            )
    n = len(seps)
    for i, sep in enumerate(seps):
        if i < n - 1:
            rules.append(f"-A {svc} -m statistic --mode random --probability {1.0 / (n - i):.10f} -j {sep}")
        else:
            rules.append(f"-A {svc} -j {sep}")
    out[svc] = rules
    for e, sep in zip(sp.endpoints, seps, strict=True):
        recent = f"-m recent --name {sep} --mask 255.255.255.255 --set " if sp.affinity_timeout > 0 else ""
        out[sep] = [
            f"-A {sep} -s {e.ip}/32 -j {MARK_MASQ}",
            f"-A {sep} -p {p} {recent}-m {p} -j DNAT --to-destination {e.ip}:{e.port}",
        ]
    if sp.node_port:
        ext = ext_chain(sp)
        out[ext] = [f"-A {ext} -j {MARK_MASQ}", f"-A {ext} -j {svc}"]
    return out


def services_rule(sp: ServicePort) -> str:
    p = sp.protocol
    return (
        f'-A {SERVICES} -d {sp.cluster_ip}/32 -p {p} -m comment --comment "{sp.key} cluster IP" '
        f"-m {p} --dport {sp.port} -j {svc_chain(sp)}"
    )


def nodeport_rule(sp: ServicePort) -> str:
    p = sp.protocol
    return f'-A {NODEPORTS} -p {p} -m comment --comment "{sp.key}" -m {p} --dport {sp.node_port} -j {ext_chain(sp)}'


def build(ports: Iterable[ServicePort], opts: Options, skip_ips: frozenset[str] = frozenset()) -> Ruleset:
    """The whole desired nat-table state for our chains."""
    rs: Ruleset = static_chains(opts)
    services: list[str] = []
    nodeports: list[str] = []
    for sp in sorted(ports, key=lambda s: (s.key, s.protocol)):
        if sp.cluster_ip in skip_ips or not sp.endpoints:
            continue
        rs.update(service_chains(sp, opts))
        services.append(services_rule(sp))
        if sp.node_port:
            nodeports.append(nodeport_rule(sp))
    services.append(
        f'-A {SERVICES} -m comment --comment "pinnace service nodeports" -m addrtype --dst-type LOCAL -j {NODEPORTS}'
    )
    rs[SERVICES] = services
    rs[NODEPORTS] = nodeports
    return rs


def changed_chains(old: Ruleset, new: Ruleset) -> tuple[list[str], list[str]]:
    """(chains to (re)write, chains to delete) to go from old to new."""
    write = [c for c, rules in new.items() if old.get(c) != rules]
    delete = [c for c in old if c not in new]
    return write, delete


def restore_payload(new: Ruleset, write: Iterable[str], delete: Iterable[str]) -> str:
    """iptables-restore --noflush input that rewrites `write` and removes `delete`."""
    write = list(write)
    lines = ["*nat"]
    lines.extend(f":{c} - [0:0]" for c in write)
    delete = list(delete)
    lines.extend(f":{c} - [0:0]" for c in delete)  # flush first, so nothing references them
    for c in write:
        lines.extend(new[c])
    lines.extend(f"-X {c}" for c in delete)
    lines.append("COMMIT")
    lines.append("")
    return "\n".join(lines)


BUILTIN = ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")


@dataclass
class Foreign:
    """What others keep in the nat table (from iptables-save): their chains, rules and policies."""

    policies: dict[str, str]
    chains: list[str]
    rules: list[str]


def parse_foreign(saved: str) -> Foreign:
    """Everything in an `iptables-save -t nat` dump that is not ours (nor a jump to ours)."""
    policies = {b: "ACCEPT" for b in BUILTIN}
    chains: list[str] = []
    kept: list[str] = []
    in_nat = False
    for line in saved.splitlines():
        if line.startswith("*"):
            in_nat = line == "*nat"
            continue
        if not in_nat or not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith(":"):
            name, policy = line[1:].split()[:2]
            if name in policies:
                policies[name] = policy
            elif not name.startswith(PREFIX):
                chains.append(name)
            continue
        if line.startswith("-A "):
            parts = line.split()
            if parts[1].startswith(PREFIX) or f"-j {PREFIX}" in line or f"-g {PREFIX}" in line:
                continue
            kept.append(line)
    return Foreign(policies=policies, chains=chains, rules=kept)


def full_table_payload(new: Ruleset, foreign: Foreign) -> str:
    """The whole nat table (theirs preserved, ours complete) for a plain iptables-restore.

    Without --noflush, iptables-nft-restore loads a large table an order of magnitude faster than
    with it; the table is replaced atomically and what others had in it is written back as it was.
    """
    lines = ["*nat"]
    lines.extend(f":{b} {foreign.policies.get(b, 'ACCEPT')} [0:0]" for b in BUILTIN)
    lines.extend(f":{c} - [0:0]" for c in foreign.chains)
    lines.extend(f":{c} - [0:0]" for c in new)
    for parent, target, comment in JUMPS:
        lines.append(f'-A {parent} -m comment --comment "{comment}" -j {target}')
    lines.extend(foreign.rules)
    for rl in new.values():
        lines.extend(rl)
    lines.append("COMMIT")
    lines.append("")
    return "\n".join(lines)


def full_payload(new: Ruleset, existing: Iterable[str]) -> str:
    """Everything in `new`, plus deletion of our chains that exist but are no longer wanted."""
    stale = [c for c in existing if c.startswith(PREFIX) and c not in new]
    return restore_payload(new, list(new), stale)
