"""`pinnace why-pending POD [-n NS]`: every node with every failed filter and every score for a pod.

It replays the scheduler's own plugins (services.scheduler, same distribution) over a fresh read of
the cluster: nodes, the pods bound to them, claims, volumes and storage classes. The scheduler itself
keeps no extra API for this; what it decided is on the pod (PodScheduled condition) and in its events.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pinnace.api import node_pb2, pod_pb2, storage_pb2
from pinnace.cli import output
from pinnace.cli.context import CLIError, client_from_args, common_parent, namespace_of
from pinnace.client import Client, errors
from pinnace.common import kinds


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `pinnace why-pending` to the CLI."""
    p = subparsers.add_parser(
        "why-pending",
        help="why a pod is (or would be) pending: every node, every failed filter, every score",
        parents=[common_parent()],
    )
    p.add_argument("pod", metavar="POD", help="the pod's name")
    p.add_argument("-o", "--output", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_why_pending)


def explain(client: Client, namespace: str, name: str) -> dict[str, Any]:
    """The report as plain data (also what `-o json` prints)."""
    from services.scheduler.harness import Harness  # the scheduler's plugins, replayed here

    try:
        pod = client.get(pod_pb2.Pod, name, namespace)
    except errors.NotFound:
        raise CLIError(f"pod {namespace}/{name} not found", "list pods with `pinnace get pods`") from None
    nodes = client.list(node_pb2.Node).items
    pods = [p for p in client.list(pod_pb2.Pod).items if p.spec.node_name and p.metadata.name != name]
    h = Harness(nodes, pods)
    for pvc in client.list(storage_pb2.PersistentVolumeClaim).items:
        h.add_pvc(pvc)
    for pv in client.list(storage_pb2.PersistentVolume).items:
        h.add_pv(pv)
    for sc in client.list(storage_pb2.StorageClass).items:
        h.add_storage_class(sc)
    probe = pod_pb2.Pod()
    probe.CopyFrom(pod)
    probe.spec.node_name = ""
    pod_reason, reports = h.explain(probe)
    decision = h.framework.schedule(probe)
    cond = next((c for c in pod.status.conditions if c.type == "PodScheduled"), None)
    return {
        "pod": f"{namespace}/{name}",
        "phase": pod.status.phase or "Pending",
        "nodeName": pod.spec.node_name,
        "condition": None if cond is None else {"status": cond.status, "reason": cond.reason, "message": cond.message},
        "podLevelReason": pod_reason,
        "summary": decision.message if decision.node is None else f"would fit; best node now: {decision.node}",
        "nodes": [
            {
                "node": r.node,
                "feasible": not r.failed and not pod_reason,
                "failed": r.failed,
                "scores": r.scores,
                "total": r.total,
            }
            for r in reports
        ],
    }


def _print(report: dict[str, Any]) -> None:
    where = f"bound to {report['nodeName']}" if report["nodeName"] else "not bound"
    print(f"Pod {report['pod']}: {report['phase']}, {where}")
    cond = report["condition"]
    if cond:
        print(f"PodScheduled={cond['status']} {cond['reason']}: {cond['message']}".rstrip(": "))
    if report["podLevelReason"]:
        print(f"Every node: {report['podLevelReason']}")
    print(f"Now: {report['summary']}")
    rows = []
    for n in report["nodes"]:
        if n["failed"]:
            detail = "; ".join(f"{plugin}: {', '.join(reasons)}" for plugin, reasons in n["failed"].items())
            rows.append([n["node"], "no", "-", detail])
        else:
            detail = " ".join(f"{k.removeprefix('NodeResources')}={v:.0f}" for k, v in n["scores"].items())
            rows.append([n["node"], "yes" if n["feasible"] else "no", f"{n['total']:.0f}", detail])
    output.print_table(["NODE", "FITS", "SCORE", "FAILED FILTERS / SCORES"], rows)


def cmd_why_pending(args: argparse.Namespace) -> int:
    client = client_from_args(args)
    try:
        report = explain(client, namespace_of(args, kinds.of_message(pod_pb2.Pod)), args.pod)
    finally:
        client.close()
    if args.output == "json":
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0
