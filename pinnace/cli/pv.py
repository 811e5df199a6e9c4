"""`pinnace pv rebind PV --claim NS/NAME`: give a Released, Retain volume (and its data) to a new claim.

Kubernetes leaves this to the user (edit the PV, delete claimRef.uid, ...). Here one command
clears the old claimRef, pre-binds the volume to the named claim (claimRef without uid) and
marks it Available; the PV binder then binds it to that claim, and to no other.
"""

from __future__ import annotations

import argparse

from pinnace.api import storage_pb2
from pinnace.cli.context import CLIError, client_from_args, common_parent, namespace_of
from pinnace.client import Client, errors

BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `pinnace pv ...` to the CLI."""
    pv = subparsers.add_parser("pv", help="PersistentVolume operations", parents=[common_parent()])
    sub = pv.add_subparsers(dest="pv_command", metavar="COMMAND")
    sub.required = True
    rb = sub.add_parser(
        "rebind",
        help="re-bind a Released volume with reclaim policy Retain (data kept) to a new claim",
        parents=[common_parent()],
    )
    rb.add_argument("pv", metavar="PV", help="the PersistentVolume's name")
    rb.add_argument("--claim", required=True, metavar="NS/NAME", help="the claim to bind it to (NAME: -n namespace)")
    rb.set_defaults(func=cmd_rebind)


def parse_claim(text: str, default_ns: str) -> tuple[str, str]:
    ns, sep, name = text.partition("/")
    if not sep:
        ns, name = default_ns, text
    if not ns or not name or "/" in name:
        raise CLIError(f"--claim {text!r}: write NAMESPACE/NAME", usage=True)
    return ns, name


def rebind(client: Client, pv_name: str, namespace: str, claim_name: str) -> str:
    """Do it; returns a one-line summary. CLIError when the volume or claim is not eligible."""
    try:
        pv = client.get(storage_pb2.PersistentVolume, pv_name, None)
    except errors.NotFound:
        raise CLIError(f"persistentvolume {pv_name} not found", "list them with `pinnace get pv`") from None
    policy = pv.spec.persistent_volume_reclaim_policy or "Retain"
    if policy != "Retain":
        raise CLIError(f"persistentvolume {pv_name} has reclaim policy {policy}; only Retain volumes keep their data")
    if pv.status.phase != "Released":
        ref = pv.spec.claim_ref
        target = ref.namespace == namespace and ref.name == claim_name and not ref.uid
        if pv.status.phase == "Available" and target:
            return f"persistentvolume/{pv_name} is already waiting for claim {namespace}/{claim_name}"
        raise CLIError(
            f"persistentvolume {pv_name} is {pv.status.phase or 'Pending'}, not Released",
            "only a volume whose claim was deleted can be re-bound",
        )
    note = "the binder binds it when the claim is created"
    try:
        claim = client.get(storage_pb2.PersistentVolumeClaim, claim_name, namespace)
        if claim.spec.volume_name and claim.spec.volume_name != pv_name:
            raise CLIError(
                f"persistentvolumeclaim {namespace}/{claim_name} is already bound to {claim.spec.volume_name}"
            )
        note = "the binder binds it now"
    except errors.NotFound:
        pass
    old = f"{pv.spec.claim_ref.namespace}/{pv.spec.claim_ref.name}"

    def prebind(obj: storage_pb2.PersistentVolume) -> None:
        if obj.status.phase != "Released":
            raise CLIError(f"persistentvolume {pv_name} changed meanwhile (now {obj.status.phase}); try again")
        obj.spec.ClearField("claim_ref")
        r = obj.spec.claim_ref
        r.kind, r.api_version, r.namespace, r.name = "PersistentVolumeClaim", "v1", namespace, claim_name
        obj.metadata.annotations.pop(BOUND_BY_CONTROLLER, None)

    pv = client.mutate(storage_pb2.PersistentVolume, pv_name, None, prebind)

    def available(obj: storage_pb2.PersistentVolume) -> None:
        obj.status.phase, obj.status.reason = "Available", ""
        obj.status.message = f"re-bound from claim {old} to {namespace}/{claim_name}"

    client.mutate_status(storage_pb2.PersistentVolume, pv_name, None, available)
    return f"persistentvolume/{pv_name} re-bound from {old} to claim {namespace}/{claim_name}, data kept; {note}"


def cmd_rebind(args: argparse.Namespace) -> int:
    ns, name = parse_claim(args.claim, namespace_of(args))
    client = client_from_args(args)
    try:
        print(rebind(client, args.pv, ns, name))
    finally:
        client.close()
    return 0
