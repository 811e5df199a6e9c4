"""`apply`, `create`, `edit` and waiting for objects to become ready.

apply: for each manifest object, create it if missing; otherwise merge the manifest onto the live
object (fields the manifest sets replace the live ones; lists and maps are replaced whole; fields it
leaves out, such as an allocated clusterIP, are kept; annotations are merged) and update with a
compare-and-swap on resource_version, re-reading and retrying on a conflict. Unchanged objects are
not written. ``--wait`` waits until pods are Ready, Deployments/ReplicaSets available, claims Bound,
volumes Available or Bound, nodes Ready.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from pinnace.api import object_pb2
from pinnace.cli import output
from pinnace.cli.context import CLIError, client_from_args, common_parent, namespace_of
from pinnace.cli.resources import display_name, dump, parse_targets
from pinnace.client import Client, errors
from pinnace.common import kinds


def load_manifests(args: argparse.Namespace) -> list[object_pb2.Object]:
    from pinnace.manifest import load_paths

    if not args.filename:
        raise CLIError("no manifest given", "use -f FILE, -f DIR or -f - for stdin", usage=True)
    for f in args.filename:
        if f != "-" and not os.path.exists(f):
            raise CLIError(f"{f}: no such file or directory", "check the path given to -f")
    objs = load_paths(args.filename, recursive=getattr(args, "recursive", False))
    if not objs:
        raise CLIError(f"no objects found in {', '.join(args.filename)}", "are these Kubernetes manifests?")
    return objs


def _set_namespace(obj: object_pb2.Object, args: argparse.Namespace) -> None:
    info = kinds.kind_of(obj)
    m = kinds.meta(obj)
    if info.namespaced:
        flag = getattr(args, "namespace", None)
        if m.namespace and flag and m.namespace != flag:
            raise CLIError(
                f"{display_name(info)}/{m.name} is in namespace {m.namespace!r}, but -n {flag} was given",
                "drop -n or the manifest's namespace",
            )
        if not m.namespace:
            m.namespace = namespace_of(args, info)
    else:
        m.namespace = ""


def _is_repeated(f: FieldDescriptor) -> bool:
    return bool(f.is_repeated)


def merge_desired(live: Message, desired: Message) -> None:
    """Overlay ``desired`` onto ``live`` in place: set fields replace, unset fields are kept;
    repeated fields and maps are replaced whole."""
    for f, value in desired.ListFields():
        merge_field(live, f, value)


def merge_field(live: Message, f: FieldDescriptor, value: Any) -> None:
    """Overlay one field (as ListFields gives it) onto ``live``."""
    if _is_repeated(f):
        target = getattr(live, f.name)
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            target.clear()
            if f.message_type.fields_by_name["value"].message_type is not None:
                for k, v in value.items():
                    target[k].CopyFrom(v)
            else:
                target.update(value)
        else:
            del target[:]
            target.extend(value)
    elif f.message_type is not None:
        sub = getattr(live, f.name)
        if f.containing_oneof is not None or _special(f.message_type.full_name):
            sub.CopyFrom(value)
        else:
            merge_desired(sub, value)
    else:
        setattr(live, f.name, value)


def _special(full_name: str) -> bool:
    # Values that are atomic: an IntOrString, a Quantity, a timestamp.
    return full_name in ("pinnace.v1.IntOrString", "pinnace.v1.Quantity", "google.protobuf.Timestamp")


def planned_update(live: object_pb2.Object, desired: object_pb2.Object) -> object_pb2.Object:
    """The object apply would write: live, with the manifest's fields over it (status untouched)."""
    out = object_pb2.Object()
    out.CopyFrom(live)
    inner, want = kinds.unwrap(out), kinds.unwrap(desired)
    for f, value in want.ListFields():
        if f.name == "status":
            continue
        if f.name == "metadata":
            m, dm = kinds.meta(out), kinds.meta(desired)
            m.labels.clear()
            m.labels.update(dm.labels)
            m.annotations.update(dm.annotations)
            if dm.finalizers:
                del m.finalizers[:]
                m.finalizers.extend(dm.finalizers)
            if dm.owner_references:
                del m.owner_references[:]
                m.owner_references.extend(dm.owner_references)
            continue
        merge_field(inner, f, value)
    return out


def apply_one(
    client: Client, desired: object_pb2.Object, dry_run: bool, attempts: int = 10
) -> tuple[str, object_pb2.Object]:
    """Create or update one object; returns (what happened, the stored object)."""
    info = kinds.kind_of(desired)
    m = kinds.meta(desired)
    for attempt in range(attempts):
        try:
            live = kinds.wrap(client.get(info.message, m.name, m.namespace))
        except errors.NotFound:
            try:
                return "created", kinds.wrap(client.create(desired, dry_run=dry_run))
            except errors.AlreadyExists:
                continue  # raced with another creator: update instead
        new = planned_update(live, desired)
        if _same(new, live):
            return "unchanged", live
        try:
            if not dry_run:
                # The store fills in defaults; a manifest that only omits defaulted fields changes nothing.
                trial = kinds.wrap(client.update(new, dry_run=True))
                if _same(trial, live):
                    return "unchanged", live
            return "configured", kinds.wrap(client.update(new, dry_run=dry_run))
        except errors.Conflict:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise errors.Conflict(f"{display_name(info)}/{m.name}: kept conflicting with other writers")


def _same(a: object_pb2.Object, b: object_pb2.Object) -> bool:
    x, y = object_pb2.Object(), object_pb2.Object()
    x.CopyFrom(a)
    y.CopyFrom(b)
    for o in (x, y):
        kinds.meta(o).resource_version = ""
        inner = kinds.unwrap(o)
        if "status" in inner.DESCRIPTOR.fields_by_name:
            inner.ClearField("status")
    return x == y


def cmd_apply(args: argparse.Namespace) -> int:
    objs = load_manifests(args)
    dry = args.dry_run is not None
    server_dry = args.dry_run == "server"
    suffix = f" (dry run: {args.dry_run})" if dry else ""
    applied: list[object_pb2.Object] = []
    rc = 0
    with client_from_args(args) as client:
        for obj in objs:
            _set_namespace(obj, args)
            info = kinds.kind_of(obj)
            name = f"{display_name(info)}/{kinds.meta(obj).name}"
            if not kinds.meta(obj).name:
                output.err(f"{info.kind}: apply needs metadata.name (hint: use `pinnace create` for generateName)")
                rc = 1
                continue
            if dry and not server_dry:
                print(f"{name} checked{suffix}", flush=True)
                continue
            try:
                what, stored = apply_one(client, obj, server_dry)
            except errors.PinnaceError as exc:
                output.err(f"{name}: {_error_text(exc)}")
                rc = 1
                continue
            print(f"{name} {what}{suffix}", flush=True)
            applied.append(stored)
        if args.wait and not dry and applied:
            if not wait_ready(client, applied, args.wait_timeout):
                rc = 1
    return rc


def _error_text(exc: errors.PinnaceError) -> str:
    text = exc.message
    if isinstance(exc, errors.Invalid) and exc.field_path and exc.field_path not in text:
        text = f"{exc.field_path}: {text}"
    return text + (f" (hint: {exc.hint})" if exc.hint else "")


def cmd_create(args: argparse.Namespace) -> int:
    objs = load_manifests(args)
    rc = 0
    created: list[object_pb2.Object] = []
    with client_from_args(args) as client:
        for obj in objs:
            _set_namespace(obj, args)
            info = kinds.kind_of(obj)
            name = f"{display_name(info)}/{kinds.meta(obj).name}"
            try:
                created.append(kinds.wrap(client.create(obj, dry_run=args.dry_run)))
            except errors.AlreadyExists:
                output.err(f"{name} already exists (hint: use `pinnace apply -f` to update it)")
                rc = 1
                continue
            print(f"{name} created" + (" (dry run)" if args.dry_run else ""), flush=True)
        if args.wait and created and not args.dry_run and not wait_ready(client, created, args.wait_timeout):
            rc = 1
    return rc


# -- readiness ------------------------------------------------------------------------------------


def readiness(obj: Any, info: kinds.KindInfo) -> tuple[bool, str]:
    """(ready, progress text) for the kinds that have a notion of ready."""
    k = info.key
    if k == "pod":
        if obj.status.phase == "Succeeded":
            return True, "Succeeded"
        ready = any(c.type == "Ready" and c.status == "True" for c in obj.status.conditions)
        n_ready = sum(1 for cs in obj.status.container_statuses if cs.ready)
        return ready, f"{obj.status.phase or 'Pending'}, {n_ready}/{len(obj.spec.containers)} containers ready"
    if k in ("deployment", "replica_set"):
        want = obj.spec.replicas if obj.spec.HasField("replicas") else 1
        s = obj.status
        have = s.available_replicas if k == "deployment" else s.ready_replicas
        done = have >= want and s.observed_generation >= obj.metadata.generation
        if k == "deployment":
            done = done and s.updated_replicas >= want
        return done, f"{have}/{want} available"
    if k == "persistent_volume_claim":
        return obj.status.phase == "Bound", obj.status.phase or "Pending"
    if k == "persistent_volume":
        return obj.status.phase in ("Available", "Bound"), obj.status.phase or "Pending"
    if k == "node":
        ready = any(c.type == "Ready" and c.status == "True" for c in obj.status.conditions)
        return ready, "Ready" if ready else "NotReady"
    return True, "created"


def wait_ready(client: Client, objs: list[object_pb2.Object], timeout: float) -> bool:
    """Poll until every object is ready, printing progress on changes; False on timeout."""
    deadline = time.monotonic() + timeout
    pending = {(kinds.kind_of(o).key, kinds.meta(o).namespace, kinds.meta(o).name) for o in objs}
    last: dict[tuple[str, str, str], str] = {}
    while pending:
        for key in sorted(pending):
            info = kinds.by_key(key[0])
            try:
                obj = client.get(info.message, key[2], key[1])
            except errors.NotFound:
                text, ok = "not found", False
            else:
                ok, text = readiness(obj, info)
            label = f"{display_name(info)}/{key[2]}"
            if ok:
                output.info(f"{label} ready ({text})")
                pending.discard(key)
            elif last.get(key) != text:
                output.info(f"waiting for {label}: {text}")
                last[key] = text
        if not pending:
            return True
        if time.monotonic() > deadline:
            names = ", ".join(f"{k[0]}/{k[2]}" for k in sorted(pending))
            output.err(f"timed out after {timeout:.0f}s waiting for {names} (hint: `pinnace describe` shows why)")
            return False
        time.sleep(0.5)
    return True


# -- edit -----------------------------------------------------------------------------------------


def _editor() -> list[str]:
    editor = os.environ.get("PINNACE_EDITOR") or os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    return shlex.split(editor)


def cmd_edit(args: argparse.Namespace) -> int:
    from pinnace.manifest import ManifestError, load_text

    targets = parse_targets(args.targets)
    if len(targets) != 1 or len(targets[0][1]) != 1:
        raise CLIError("edit one object: pinnace edit TYPE NAME", usage=True)
    info, names = targets[0]
    ns = namespace_of(args, info)
    with client_from_args(args) as client:
        try:
            live = client.get(info.message, names[0], ns)
        except errors.NotFound:
            raise CLIError(f'{display_name(info)} "{names[0]}" not found', f"`pinnace get {info.plural}`") from None
        original_rv = live.metadata.resource_version  # type: ignore[attr-defined]
        text = dump([live], "yaml")
        header = (
            "# Edit the object below; lines starting with '#' are ignored. Save and quit to apply;\n"
            "# an unchanged file cancels. Status changes are ignored.\n"
        )
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=f"pinnace-edit-{names[0]}-", delete=False) as f:
            f.write(header + text)
            path = f.name
        try:
            result = subprocess.run([*_editor(), path])
        except FileNotFoundError as exc:
            raise CLIError(f"cannot start editor: {exc}", "set $EDITOR, e.g. EDITOR=nano") from None
        if result.returncode != 0:
            raise CLIError(f"editor exited with status {result.returncode}; nothing changed", f"your copy: {path}")
        with open(path) as f:
            edited = f.read()
        if edited.strip() == (header + text).strip():
            os.unlink(path)
            output.info("Edit cancelled, no changes made.")
            return 0
        try:
            objs = load_text(edited, path)
        except ManifestError as exc:
            raise CLIError(f"the edited object is not valid: {exc}", f"your copy is kept at {path}") from None
        if len(objs) != 1 or kinds.kind_of(objs[0]) is not info:
            raise CLIError(f"the edited file must hold exactly one {info.kind}", f"your copy: {path}")
        new = objs[0]
        m = kinds.meta(new)
        if m.name != names[0] or (info.namespaced and m.namespace not in ("", ns)):
            raise CLIError("name and namespace cannot be changed by edit", f"your copy: {path}")
        m.namespace = ns if info.namespaced else ""
        m.resource_version = original_rv
        try:
            client.update(new)
        except errors.Conflict:
            raise CLIError(
                f"{display_name(info)}/{names[0]} was changed by someone else while you edited it",
                f"run `pinnace edit` again; your copy is kept at {path}",
            ) from None
        except errors.PinnaceError as exc:
            raise CLIError(f"{display_name(info)}/{names[0]}: {_error_text(exc)}", f"your copy: {path}") from None
        os.unlink(path)
        print(f"{display_name(info)}/{names[0]} edited", flush=True)
    return 0


# -- registration ---------------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parent = common_parent()
    a = subparsers.add_parser("apply", parents=[parent], help="create or update objects from manifests")
    a.add_argument("-f", "--filename", action="append", default=[], help="file, directory or - (stdin)")
    a.add_argument("-R", "--recursive", action="store_true", help="descend into subdirectories")
    a.add_argument(
        "--dry-run",
        nargs="?",
        const="server",
        choices=["server", "client"],
        default=None,
        help="server: the store checks but stores nothing; client: only parse and validate",
    )
    a.add_argument("--wait", action="store_true", help="wait until the objects are ready, showing progress")
    a.add_argument("--wait-timeout", type=float, default=300.0)
    a.set_defaults(func=cmd_apply)

    c = subparsers.add_parser("create", parents=[parent], help="create objects from manifests (fails if they exist)")
    c.add_argument("-f", "--filename", action="append", default=[], help="file, directory or - (stdin)")
    c.add_argument("-R", "--recursive", action="store_true")
    c.add_argument("--dry-run", action="store_true")
    c.add_argument("--wait", action="store_true")
    c.add_argument("--wait-timeout", type=float, default=300.0)
    c.set_defaults(func=cmd_create)

    e = subparsers.add_parser("edit", parents=[parent], help="edit an object in $EDITOR and save it (compare-and-swap)")
    e.add_argument("targets", nargs="+", metavar="TYPE NAME | TYPE/NAME")
    e.set_defaults(func=cmd_edit)


def stdout_isatty() -> bool:
    return sys.stdout.isatty()
