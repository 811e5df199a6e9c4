"""Route reconciliation shared by the backends: routes marked with our protocol number."""

from __future__ import annotations

import contextlib

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from services.netagent.overlay import ROUTE_PROTO

RTNH_F_ONLINK = 4


def owned_routes(ipr: IPRoute) -> dict[str, dict[str, object]]:
    """dst/len -> {gateway, oif} for every main-table route carrying ROUTE_PROTO."""
    out: dict[str, dict[str, object]] = {}
    for r in ipr.get_routes(family=2, table=254):
        if r["proto"] != ROUTE_PROTO:
            continue
        out[f"{r.get('RTA_DST')}/{r['dst_len']}"] = {"gateway": r.get("RTA_GATEWAY"), "oif": r.get("RTA_OIF")}
    return out


def sync_routes(ipr: IPRoute, want: dict[str, tuple[str, int | None, bool]]) -> None:
    """want: dst -> (gateway, oif or None, onlink). Replace what differs, delete the rest."""
    have = owned_routes(ipr)
    for dst, (gw, oif, onlink) in want.items():
        cur = have.get(dst)
        if cur and cur["gateway"] == gw and (oif is None or cur["oif"] == oif):
            continue
        kw: dict[str, object] = {"dst": dst, "gateway": gw, "proto": ROUTE_PROTO}
        if oif is not None:
            kw["oif"] = oif
        if onlink:
            kw["flags"] = RTNH_F_ONLINK
        ipr.route("replace", **kw)
    for dst in have:
        if dst not in want:
            with contextlib.suppress(NetlinkError):
                ipr.route("del", dst=dst, proto=ROUTE_PROTO)
