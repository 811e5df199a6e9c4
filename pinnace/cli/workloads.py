"""`scale` and `rollout status|history|undo` for Deployments (and scale for any kind with spec.replicas).

Rollout history comes from the Deployment's ReplicaSets: each carries the annotation
``deployment.kubernetes.io/revision`` (set by the deployment controller) and is owned by the
Deployment (owner reference uid). Undo copies a ReplicaSet's pod template back into the Deployment.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from pinnace.api import apps_pb2
from pinnace.cli import output
from pinnace.cli.context import CLIError, client_from_args, common_parent, namespace_of
from pinnace.cli.resources import display_name, parse_targets
from pinnace.client import Client, errors

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"


def cmd_scale(args: argparse.Namespace) -> int:
    targets = parse_targets(args.targets)
    if args.replicas < 0:
        raise CLIError("--replicas must be >= 0", usage=True)
    with client_from_args(args) as client:
        for info, names in targets:
            spec_fields = info.message.DESCRIPTOR.fields_by_name.get("spec")
            spec_type = spec_fields.message_type if spec_fields is not None else None
            if spec_type is None or "replicas" not in spec_type.fields_by_name:
                raise CLIError(f"{info.plural} cannot be scaled", "scale deployments or replicasets")
            if not names:
                raise CLIError(f"name the {info.plural} to scale", usage=True)
            ns = namespace_of(args, info)
            for name in names:

                def set_replicas(obj: Any, label: str = display_name(info)) -> None:
                    current = obj.spec.replicas if obj.spec.HasField("replicas") else 1
                    if args.current_replicas is not None and current != args.current_replicas:
                        raise CLIError(
                            f"{label}/{obj.metadata.name} has {current} replicas, not {args.current_replicas}",
                            "drop --current-replicas or check `pinnace get`",
                        )
                    obj.spec.replicas = args.replicas

                try:
                    client.mutate(info.message, name, ns, set_replicas)
                except errors.NotFound:
                    raise CLIError(f'{display_name(info)} "{name}" not found', f"`pinnace get {info.plural}`") from None
                print(f"{display_name(info)}/{name} scaled", flush=True)
    return 0


# -- rollout --------------------------------------------------------------------------------------


def _deployment_target(args: argparse.Namespace) -> str:
    targets = parse_targets(args.targets)
    if len(targets) != 1 or targets[0][0].key != "deployment" or len(targets[0][1]) != 1:
        raise CLIError("name one deployment: deployment/NAME or deployment NAME", usage=True)
    return targets[0][1][0]


def _get_deployment(client: Client, name: str, ns: str) -> apps_pb2.Deployment:
    try:
        return client.get(apps_pb2.Deployment, name, ns)
    except errors.NotFound:
        raise CLIError(f'deployment.apps "{name}" not found', "`pinnace get deployments`") from None


def owned_replicasets(client: Client, d: apps_pb2.Deployment) -> list[apps_pb2.ReplicaSet]:
    rss = client.list_all(apps_pb2.ReplicaSet, d.metadata.namespace).items
    out = [rs for rs in rss if any(o.uid == d.metadata.uid for o in rs.metadata.owner_references)]
    return sorted(out, key=revision_of)


def revision_of(rs: apps_pb2.ReplicaSet) -> int:
    try:
        return int(rs.metadata.annotations.get(REVISION, "0"))
    except ValueError:
        return 0


def rollout_state(d: apps_pb2.Deployment) -> tuple[bool, str]:
    """(done, message) like kubectl rollout status."""
    want = d.spec.replicas if d.spec.HasField("replicas") else 1
    s = d.status
    name = d.metadata.name
    if s.observed_generation < d.metadata.generation:
        return False, f'Waiting for deployment "{name}" spec update to be observed...'
    for c in s.conditions:
        if c.type == "Progressing" and c.reason == "ProgressDeadlineExceeded":
            raise CLIError(f'deployment "{name}" exceeded its progress deadline', "`pinnace describe deployment`")
    if s.updated_replicas < want:
        return False, (
            f'Waiting for deployment "{name}" rollout to finish: {s.updated_replicas} out of {want} '
            "new replicas have been updated..."
        )
    if s.replicas > s.updated_replicas:
        return False, (
            f'Waiting for deployment "{name}" rollout to finish: {s.replicas - s.updated_replicas} '
            "old replicas are pending termination..."
        )
    if s.available_replicas < s.updated_replicas:
        return False, (
            f'Waiting for deployment "{name}" rollout to finish: {s.available_replicas} of '
            f"{s.updated_replicas} updated replicas are available..."
        )
    return True, f'deployment "{name}" successfully rolled out'


def cmd_rollout(args: argparse.Namespace) -> int:
    name = _deployment_target(args)
    ns = namespace_of(args)
    with client_from_args(args) as client:
        if args.rollout_action == "status":
            deadline = time.monotonic() + args.wait_timeout
            last = ""
            while True:
                done, msg = rollout_state(_get_deployment(client, name, ns))
                if msg != last:
                    print(msg, flush=True)
                    last = msg
                if done:
                    return 0
                if not args.watch:
                    return 1
                if time.monotonic() > deadline:
                    output.err(f"timed out waiting for the rollout of deployment {name!r}")
                    return 1
                time.sleep(0.5)
        d = _get_deployment(client, name, ns)
        rss = owned_replicasets(client, d)
        if args.rollout_action == "history":
            print(f"deployment.apps/{name}")
            rows = [[str(revision_of(rs)), rs.metadata.annotations.get(CHANGE_CAUSE, "<none>")] for rs in rss]
            if args.revision:
                match = [rs for rs in rss if revision_of(rs) == args.revision]
                if not match:
                    raise CLIError(f"revision {args.revision} not found", "see `pinnace rollout history`")
                tmpl = match[0].spec.template
                print(f"Revision {args.revision}:")
                print("  Containers: " + ", ".join(f"{c.name} ({c.image})" for c in tmpl.spec.containers))
                return 0
            output.print_table(["REVISION", "CHANGE-CAUSE"], rows)
            return 0
        if args.rollout_action == "undo":
            if not rss:
                raise CLIError(f"deployment {name!r} has no rollout history", "its ReplicaSets carry the revisions")
            current = max(revision_of(rs) for rs in rss)
            if args.to_revision:
                match = [rs for rs in rss if revision_of(rs) == args.to_revision]
            else:
                match = [rs for rs in rss if revision_of(rs) < current][-1:]
            if not match:
                raise CLIError(
                    f"no revision {args.to_revision or 'before ' + str(current)} for deployment {name!r}",
                    f"`pinnace rollout history deployment/{name}`",
                )
            target = match[0]

            def undo(dep: apps_pb2.Deployment) -> None:
                dep.spec.template.CopyFrom(target.spec.template)
                dep.spec.template.metadata.labels.pop(HASH_LABEL, None)

            client.mutate(apps_pb2.Deployment, name, ns, undo)
            print(f"deployment.apps/{name} rolled back to revision {revision_of(target)}", flush=True)
            return 0
    raise CLIError("unknown rollout action", "status, history or undo", usage=True)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parent = common_parent()
    s = subparsers.add_parser("scale", parents=[parent], help="set the number of replicas")
    s.add_argument("targets", nargs="+", metavar="TYPE NAME | TYPE/NAME")
    s.add_argument("--replicas", type=int, required=True)
    s.add_argument("--current-replicas", type=int, default=None, help="only if it currently has this many")
    s.set_defaults(func=cmd_scale)

    r = subparsers.add_parser("rollout", help="status, history and undo of Deployment rollouts")
    sub = r.add_subparsers(dest="rollout_action", metavar="ACTION", required=True)
    st = sub.add_parser("status", parents=[parent], help="wait for a rollout to finish")
    st.add_argument("targets", nargs="+")
    st.add_argument("-w", "--watch", action=argparse.BooleanOptionalAction, default=True)
    st.add_argument("--wait-timeout", type=float, default=600.0)
    hi = sub.add_parser("history", parents=[parent], help="revisions of a deployment")
    hi.add_argument("targets", nargs="+")
    hi.add_argument("--revision", type=int, default=0)
    un = sub.add_parser("undo", parents=[parent], help="roll back to the previous (or a given) revision")
    un.add_argument("targets", nargs="+")
    un.add_argument("--to-revision", type=int, default=0)
    r.set_defaults(func=cmd_rollout)
