"""`pinnace up`, `pinnace down`, `pinnace status`: the local cluster on this host.

Registered into the CLI by `register(subparsers)`; each handler takes the parsed args and
returns the exit code.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pinnace.cluster import control, lab
from pinnace.cluster.layout import DEFAULT_DATA_DIR, DEFAULT_RUN_DIR, ClusterSpec


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _spec_from(args: argparse.Namespace) -> ClusterSpec:
    path = Path(args.data_dir) / "cluster.json"
    if path.exists():
        return ClusterSpec.load(args.data_dir)
    return ClusterSpec(data_dir=args.data_dir)


def cmd_up(args: argparse.Namespace) -> int:
    spec = ClusterSpec(
        data_dir=args.data_dir,
        run_dir=args.run_dir,
        nodes=args.nodes,
        store_replicas=args.store_replicas,
        runtime=args.runtime,
        backend=args.backend,
        tls=not args.no_tls,
        node_grace_period=args.node_grace_period,
        eviction_timeout=args.eviction_timeout,
        prefix=args.prefix,
        host_access=not args.no_host_access,
    )
    try:
        took = control.up(spec, _say, timeout=args.timeout)
    except control.ClusterError as exc:
        _say(f"error: {exc}")
        return 1
    if took:
        _say(f"cluster up in {took:.1f}s: {spec.nodes} node(s), {spec.store_replicas} store replica(s)")
    if args.example:
        _say(f"applying {args.example}")
        argv = [sys.executable, "-m", "pinnace.cli.main", "apply", "-f", args.example]
        if not spec.host_access:
            argv = ["ip", "netns", "exec", lab.control_ns(spec), *argv, "--store", ",".join(spec.store_endpoints())]
            argv += ["--tls-dir", str(spec.pki_dir), "--tls-name", "admin"]
        rc = subprocess.run(argv).returncode
        if rc:
            return rc
    _say(
        "next:\n"
        "  pinnace get nodes\n"
        "  pinnace get pods -A\n"
        "  pinnace apply -f examples/\n"
        "  pinnace status\n"
        "  pinnace down"
    )
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    spec = _spec_from(args)
    try:
        control.down(spec, _say)
    except control.ClusterError as exc:
        _say(f"error: {exc}")
        return 1
    if args.purge:
        shutil.rmtree(spec.data_dir, ignore_errors=True)
        _say(f"removed {spec.data_dir}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    spec = _spec_from(args)
    st = control.status(spec)
    if not st["running"]:
        print("cluster: not running")
        return 1
    print(f"{'COMPONENT':<22} {'STATE':<11} {'PID':>7} {'RESTARTS':>8}  UP")
    comps = st.get("components") or []
    assert isinstance(comps, list)
    now = time.time()
    for c in comps:
        up_for = f"{now - float(c.get('since') or now):.0f}s"
        print(f"{c['name']:<22} {c['state']:<11} {c.get('pid') or '-':>7} {c['restarts']:>8}  {up_for}")
    stores = st.get("stores") or []
    assert isinstance(stores, list)
    for s in stores:
        if "error" in s:
            print(f"store {s['endpoint']}: {s['error']}")
        else:
            print(f"store {s['endpoint']}: {s['role']} term={s['term']} leader={s['leader']} rev={s['revision']}")
    ready = st.get("ready_nodes") or []
    assert isinstance(ready, list)
    print(f"ready nodes: {', '.join(ready) or '(none)'}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add up/down/status to the pinnace CLI."""
    up = subparsers.add_parser("up", help="start a local cluster on this host (root)")
    up.add_argument("--nodes", type=int, default=1)
    up.add_argument("--store-replicas", type=int, default=1)
    up.add_argument("--runtime", choices=["host", "docker"], default="host")
    up.add_argument("--backend", choices=["vxlan", "host-gw"], default="vxlan")
    up.add_argument("--no-tls", action="store_true", help="no mutual TLS (not recommended)")
    up.add_argument("--node-grace-period", type=int, default=40)
    up.add_argument("--eviction-timeout", type=int, default=300)
    up.add_argument("--timeout", type=float, default=120.0)
    up.add_argument("--example", default="", help="apply this manifest directory once the cluster is up")
    up.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    up.add_argument("--run-dir", default=DEFAULT_RUN_DIR)
    up.add_argument("--prefix", default="pinnace", help="name prefix of the lab's network namespaces")
    up.add_argument(
        "--no-host-access",
        action="store_true",
        help="no veth or routes in the host namespace; use the CLI inside the <prefix>-cp namespace",
    )
    up.set_defaults(func=cmd_up)
    down = subparsers.add_parser("down", help="stop the local cluster and remove everything it made")
    down.add_argument("--purge", action="store_true", help="also delete the data directory")
    down.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    down.set_defaults(func=cmd_down)
    status = subparsers.add_parser("status", help="health of each component of the local cluster")
    status.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    status.set_defaults(func=cmd_status)
