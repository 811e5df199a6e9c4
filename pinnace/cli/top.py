"""`top nodes|pods`: resource requests, since Pinnace collects no usage metrics.

Nodes: the sum of the CPU and memory requests of the pods bound to each node, against the node's
allocatable (or capacity). Pods: each pod's requests (sum over its containers). The header says so.
"""

from __future__ import annotations

import argparse
from typing import Any

from pinnace.api import node_pb2, pod_pb2
from pinnace.cli import output
from pinnace.cli.context import CLIError, client_from_args, common_parent, namespace_of
from pinnace.common.quantity import QuantityError, cpu_millis, format_millis, to_bytes


def _requests(pod: Any) -> tuple[int, int]:
    cpu = mem = 0
    for c in pod.spec.containers:
        r = c.resources.requests
        try:
            if "cpu" in r:
                cpu += cpu_millis(r["cpu"].value)
            if "memory" in r:
                mem += to_bytes(r["memory"].value)
        except QuantityError:
            continue
    return cpu, mem


def _mib(n: int) -> str:
    return f"{n // (1024 * 1024)}Mi"


def _pct(a: int, b: int) -> str:
    return f"{(100 * a) // b}%" if b else "-"


def cmd_top(args: argparse.Namespace) -> int:
    what = args.what.lower()
    with client_from_args(args) as client:
        if what in ("node", "nodes", "no"):
            nodes = sorted(client.list_all(node_pb2.Node).items, key=lambda n: n.metadata.name)
            pods = client.list_all(pod_pb2.Pod).items
            used: dict[str, tuple[int, int]] = {}
            for p in pods:
                if p.spec.node_name and p.status.phase not in ("Succeeded", "Failed"):
                    c, m = _requests(p)
                    pc, pm = used.get(p.spec.node_name, (0, 0))
                    used[p.spec.node_name] = (pc + c, pm + m)
            rows = []
            for n in nodes:
                alloc = n.status.allocatable or n.status.capacity
                cap_cpu = cpu_millis(alloc["cpu"].value) if "cpu" in alloc else 0
                cap_mem = to_bytes(alloc["memory"].value) if "memory" in alloc else 0
                c, m = used.get(n.metadata.name, (0, 0))
                rows.append([n.metadata.name, format_millis(c), _pct(c, cap_cpu), _mib(m), _pct(m, cap_mem)])
            output.info("(no usage metrics in Pinnace: showing the sum of pod resource requests per node)")
            output.print_table(["NAME", "CPU(requests)", "CPU%", "MEMORY(requests)", "MEMORY%"], rows)
            return 0
        if what in ("pod", "pods", "po"):
            ns = None if args.all_namespaces else namespace_of(args)
            pods = sorted(client.list_all(pod_pb2.Pod, ns).items, key=lambda p: (p.metadata.namespace, p.metadata.name))
            rows = []
            for p in pods:
                c, m = _requests(p)
                row = [p.metadata.name, format_millis(c), _mib(m)]
                rows.append([p.metadata.namespace, *row] if args.all_namespaces else row)
            headers = ["NAME", "CPU(requests)", "MEMORY(requests)"]
            output.info("(no usage metrics in Pinnace: showing each pod's resource requests)")
            output.print_table(["NAMESPACE", *headers] if args.all_namespaces else headers, rows)
            return 0
    raise CLIError(f"top {args.what!r}: use `top nodes` or `top pods`", usage=True)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = subparsers.add_parser("top", parents=[common_parent()], help="resource requests per node or pod")
    t.add_argument("what", metavar="nodes|pods")
    t.add_argument("-A", "--all-namespaces", action="store_true")
    t.set_defaults(func=cmd_top)
