"""`get`, `describe`, `delete`, `events`: generic over every kind, from the kind registry."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Iterable
from typing import Any

from google.protobuf.message import Message

from pinnace.api import cluster_pb2
from pinnace.cli import columns, output
from pinnace.cli.context import CLIError, client_from_args, common_parent, namespace_of, resolve_kind
from pinnace.client import Client, errors
from pinnace.common import kinds


def display_name(info: kinds.KindInfo) -> str:
    """kubectl's "deployment.apps" style resource names."""
    return f"{info.kind.lower()}.{info.group}" if info.group else info.kind.lower()


def parse_targets(words: list[str]) -> list[tuple[kinds.KindInfo, list[str]]]:
    """["pods", "a", "b"] / ["pod/a", "svc/b"] / ["pods,svc"] -> [(info, names)]."""
    if not words:
        raise CLIError("you must name a resource type", "e.g. `pinnace get pods`; types: `pinnace explain`", usage=True)
    if "/" in words[0]:
        out: list[tuple[kinds.KindInfo, list[str]]] = []
        for w in words:
            if "/" not in w:
                raise CLIError(f"{w!r}: use TYPE/NAME for every argument once one is TYPE/NAME", usage=True)
            k, _, n = w.partition("/")
            info = resolve_kind(k)
            for existing in out:
                if existing[0] is info:
                    existing[1].append(n)
                    break
            else:
                out.append((info, [n]))
        return out
    infos = [info for k in words[0].split(",") if k for info in _expand(k)]
    return [(info, list(words[1:])) for info in infos]


ALL = ("pod", "service", "deployment", "replica_set")


def _expand(word: str) -> list[kinds.KindInfo]:
    if word.lower() == "all":
        return [kinds.by_key(k) for k in ALL]
    return [resolve_kind(word)]


def to_dict(obj: Message) -> dict[str, Any]:
    from pinnace.manifest import to_dict as manifest_to_dict

    return manifest_to_dict(obj)


def dump(objs: list[Message], fmt: str) -> str:
    from pinnace.manifest import dump_json, dump_yaml

    if fmt == "json":
        return dump_json(objs)
    return dump_yaml(objs)


def sort_key(obj: Any) -> tuple[str, str]:
    return (obj.metadata.namespace, obj.metadata.name)


def fetch(
    client: Client,
    info: kinds.KindInfo,
    names: list[str],
    namespace: str | None,
    selector: str = "",
    field_selector: str = "",
    *,
    ignore_not_found: bool = False,
) -> tuple[list[Any], int]:
    """Named objects (NotFound raised unless ignore_not_found), or a list by selectors; with the revision."""
    if names:
        objs = []
        for n in names:
            try:
                objs.append(client.get(info.message, n, namespace or ""))
            except errors.NotFound:
                if not ignore_not_found:
                    where = f" in namespace {namespace!r}" if info.namespaced else ""
                    raise CLIError(
                        f'{display_name(info)} "{n}" not found{where}',
                        f"list them with `pinnace get {info.plural}{' -A' if info.namespaced else ''}`",
                    ) from None
        return objs, 0
    res = client.list_all(info.message, namespace, selector, field_selector)
    return sorted(res.items, key=sort_key), res.revision


# -- get ------------------------------------------------------------------------------------------


def _print_objs(info: kinds.KindInfo, objs: list[Any], args: argparse.Namespace, *, header: bool, prefix: bool) -> None:
    fmt = args.output or ""
    if fmt == "name":
        for o in objs:
            print(f"{display_name(info)}/{o.metadata.name}")
    elif fmt in ("yaml", "json"):
        if objs:
            sys.stdout.write(dump(objs, fmt))
    else:
        cols = columns.columns_for(
            info.key, wide=fmt == "wide", all_namespaces=bool(args.all_namespaces), labels=args.show_labels
        )
        rows = columns.render_rows(objs, cols)
        if prefix:
            name_col = next((i for i, c in enumerate(cols) if c.header == "NAME"), None)
            if name_col is not None:
                for r in rows:
                    r[name_col] = f"{display_name(info)}/{r[name_col]}"
        if header:
            output.print_table([c.header for c in cols], rows)
        else:
            # Watch rows: no header, same alignment as far as possible.
            for r in rows:
                print("   ".join(r), flush=True)


EMPTY_LIST = {
    "json": '{\n    "apiVersion": "v1",\n    "items": [],\n    "kind": "List"\n}\n',
    "yaml": "apiVersion: v1\nitems: []\nkind: List\n",
}


def cmd_get(args: argparse.Namespace) -> int:
    if args.output and args.output not in ("wide", "yaml", "json", "name"):
        raise CLIError(f"unknown output format {args.output!r}", "use -o wide, yaml, json or name", usage=True)
    targets = parse_targets(args.targets)
    if args.watch and len(targets) > 1:
        raise CLIError("watch one resource type at a time", usage=True)
    with client_from_args(args) as client:
        many = len(targets) > 1
        any_found = False
        if args.output in ("yaml", "json") and many:
            everything: list[Any] = []
            for info, names in targets:
                ns = None if args.all_namespaces and info.namespaced else namespace_of(args, info)
                objs, _ = fetch(client, info, names, ns, args.selector, args.field_selector)
                everything.extend(objs)
            if everything:
                sys.stdout.write(dump(everything, args.output))
            return 0
        revision = 0
        for info, names in targets:
            ns = None if args.all_namespaces and info.namespaced else namespace_of(args, info)
            objs, revision = fetch(
                client, info, names, ns, args.selector, args.field_selector, ignore_not_found=args.ignore_not_found
            )
            if not objs:
                if args.output in ("yaml", "json") and not names and not many:
                    # Like kubectl: a list query with no results is an empty List, not nothing.
                    sys.stdout.write(EMPTY_LIST[args.output])
                    return 0
                continue
            if any_found and not args.output:
                print()
            any_found = True
            if args.output in ("yaml", "json") and names and len(objs) == 1:
                sys.stdout.write(dump(objs, args.output))
                continue
            _print_objs(info, objs, args, header=True, prefix=many)
        if not any_found and not args.watch:
            if len(targets) == 1 and targets[0][1]:
                return 0
            where = (
                ""
                if args.all_namespaces or not targets[0][0].namespaced
                else f" in {namespace_of(args, targets[0][0])} namespace"
            )
            output.info(f"No resources found{where}.")
            return 0
        if args.watch:
            info, names = targets[0]
            ns = None if args.all_namespaces and info.namespaced else namespace_of(args, info)
            return _watch(client, info, names, ns, revision, args, header=not any_found)
    return 0


class _WatchTimeout(Exception):
    """--watch-timeout expired."""


def _watch(
    client: Client,
    info: kinds.KindInfo,
    names: list[str],
    namespace: str | None,
    revision: int,
    args: argparse.Namespace,
    *,
    header: bool,
) -> int:
    if not revision:
        revision = client.current_revision(info)
    name = names[0] if len(names) == 1 else ""
    stream = client.watch(info.message, namespace, revision, args.selector, args.field_selector, name=name)
    if args.watch_timeout:

        def expire(signum: int, frame: Any) -> None:
            raise _WatchTimeout

        signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, args.watch_timeout)
    try:
        for ev in stream:
            if ev.type == "BOOKMARK":
                continue
            if names and ev.object.metadata.name not in names:  # type: ignore[attr-defined]
                continue
            if args.output_watch_events:
                print(f"{ev.type}   ", end="")
            _print_objs(info, [ev.object], args, header=header, prefix=False)
            header = False
    except (KeyboardInterrupt, _WatchTimeout):
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    return 0


# -- describe -------------------------------------------------------------------------------------

_SKIP_TOP = {"apiVersion", "kind", "metadata"}


def _title(key: str) -> str:
    # Field names (camelCase) are capitalised as kubectl describe does; map keys (labels, ...) are kept.
    if key[:1].islower() and key.isalnum():
        return key[:1].upper() + key[1:]
    return key


def _render(value: Any, indent: int, lines: list[str]) -> None:
    pad = "  " * indent
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{_title(k)}:")
                _render(v, indent + 1, lines)
            else:
                lines.append(f"{pad}{_title(k)}:\t{_scalar(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                sub: list[str] = []
                _render(item, indent + 1, sub)
                if sub:
                    first = sub[0].lstrip()
                    lines.append(f"{pad}- {first}")
                    lines.extend(sub[1:])
            else:
                lines.append(f"{pad}- {_scalar(item)}")


def _scalar(v: Any) -> str:
    if v is None or v == {} or v == []:
        return "<none>"
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)


def _align(lines: list[str]) -> list[str]:
    width = max((len(line.split("\t", 1)[0]) for line in lines if "\t" in line), default=0)
    width = min(width, 40)
    out = []
    for line in lines:
        if "\t" in line:
            head, tail = line.split("\t", 1)
            out.append(f"{head.ljust(width)}  {tail}")
        else:
            out.append(line)
    return out


def related_events(client: Client, obj: Any, info: kinds.KindInfo) -> list[cluster_pb2.Event]:
    m = obj.metadata
    try:
        evs = client.list_all(cluster_pb2.Event, m.namespace or "default").items
    except errors.PinnaceError:
        return []
    out = [
        e
        for e in evs
        if e.involved_object.name == m.name
        and (not e.involved_object.kind or e.involved_object.kind == info.kind)
        and (not e.involved_object.uid or not m.uid or e.involved_object.uid == m.uid)
    ]
    out.sort(key=_event_time)
    return out


def _event_time(e: Any) -> float:
    ts = e.last_timestamp if e.HasField("last_timestamp") else e.metadata.creation_timestamp
    return float(ts.seconds + ts.nanos / 1e9)


def describe_text(client: Client, info: kinds.KindInfo, obj: Any) -> str:
    m = obj.metadata
    lines = [f"Name:\t{m.name}"]
    if info.namespaced:
        lines.append(f"Namespace:\t{m.namespace}")
    lines.append(f"Kind:\t{info.kind} ({info.api_version})")
    lines.append("Labels:\t" + (_labels_block(m.labels) or "<none>"))
    lines.append("Annotations:\t" + (_labels_block(m.annotations) or "<none>"))
    if m.HasField("creation_timestamp"):
        lines.append(f"CreationTimestamp:\t{m.creation_timestamp.ToJsonString()}")
    if m.HasField("deletion_timestamp"):
        lines.append(f"DeletionTimestamp:\t{m.deletion_timestamp.ToJsonString()}")
    if m.finalizers:
        lines.append(f"Finalizers:\t{', '.join(m.finalizers)}")
    if m.owner_references:
        lines.append("Controlled By:\t" + ", ".join(f"{o.kind}/{o.name}" for o in m.owner_references))
    lines.append(f"ResourceVersion:\t{m.resource_version}")
    if info.key == "pod":
        lines.append(f"Status:\t{columns.pod_status(obj)}")
        if obj.spec.node_name:
            lines.append(f"Node:\t{obj.spec.node_name}")
        if obj.status.pod_ip:
            lines.append(f"IP:\t{obj.status.pod_ip}")
        pending = _pending_reason(obj)
        if pending:
            lines.append(f"Pending:\t{pending}")
    body = {k: v for k, v in to_dict(obj).items() if k not in _SKIP_TOP}
    for k, v in body.items():
        if isinstance(v, (dict, list)) and v:
            lines.append(f"{_title(k)}:")
            _render(v, 1, lines)
        else:
            lines.append(f"{_title(k)}:\t{_scalar(v)}")
    text = "\n".join(_align(lines))
    evs = related_events(client, obj, info)
    if not evs:
        return text + "\nEvents:  <none>\n"
    rows = [
        [
            e.type or "Normal",
            e.reason,
            output.age(e.last_timestamp if e.HasField("last_timestamp") else e.metadata.creation_timestamp),
            e.source.component or e.reporting_component,
            e.message,
        ]
        for e in evs[-20:]
    ]
    table = output.format_table(["Type", "Reason", "Age", "From", "Message"], rows)
    return text + "\nEvents:\n" + "\n".join("  " + line for line in table.splitlines()) + "\n"


def _labels_block(m: Any) -> str:
    items = sorted(m.items())
    return "\n\t".join(f"{k}={v}" for k, v in items)


def _pending_reason(pod: Any) -> str:
    if pod.status.phase not in ("", "Pending"):
        return ""
    for c in pod.status.conditions:
        if c.type == "PodScheduled" and c.status != "True":
            return f"{c.reason or 'Unschedulable'}: {c.message}" if c.message else (c.reason or "not scheduled yet")
    if not pod.spec.node_name:
        return "not scheduled yet (no PodScheduled condition: is the scheduler running?)"
    return ""


def cmd_describe(args: argparse.Namespace) -> int:
    targets = parse_targets(args.targets)
    with client_from_args(args) as client:
        first = True
        for info, names in targets:
            ns = None if args.all_namespaces and info.namespaced else namespace_of(args, info)
            objs, _ = fetch(client, info, names, ns, args.selector)
            if not objs and not names:
                output.info(f"No {info.plural} found.")
            for o in objs:
                if not first:
                    print()
                first = False
                sys.stdout.write(describe_text(client, info, o))
    return 0


# -- delete ---------------------------------------------------------------------------------------


def _delete_list(args: argparse.Namespace, client: Client) -> list[tuple[kinds.KindInfo, str, str]]:
    out: list[tuple[kinds.KindInfo, str, str]] = []
    if args.filename:
        from pinnace.manifest import load_paths

        for obj in load_paths(args.filename, recursive=args.recursive, validate=False):
            info = kinds.kind_of(obj)
            m = kinds.meta(obj)
            ns = (m.namespace or namespace_of(args, info)) if info.namespaced else ""
            out.append((info, ns, m.name))
        return out
    targets = parse_targets(args.targets)
    for info, names in targets:
        ns_opt = None if args.all_namespaces and info.namespaced else namespace_of(args, info)
        if names:
            out.extend((info, ns_opt or "", n) for n in names)
        elif args.selector or args.all:
            for o in client.list_all(info.message, ns_opt, args.selector).items:
                m = kinds.meta(o)
                out.append((info, m.namespace, m.name))
        else:
            raise CLIError(
                f"name the {info.plural} to delete",
                f"`pinnace delete {info.plural} NAME`, `-l SELECTOR`, `--all` or `-f FILE`",
                usage=True,
            )
    return out


def cmd_delete(args: argparse.Namespace) -> int:
    grace: int | None = args.grace_period if args.grace_period is not None and args.grace_period >= 0 else None
    if args.now:
        grace = 1
    if args.force:
        grace = 0
    rc = 0
    with client_from_args(args) as client:
        todo = _delete_list(args, client)
        if not todo and not args.filename:
            output.info("No resources found")
        for info, ns, name in todo:
            try:
                client.delete(info.message, name, ns, grace, dry_run=args.dry_run)
            except errors.NotFound:
                if args.ignore_not_found:
                    continue
                output.err(f'{display_name(info)} "{name}" not found')
                rc = 1
                continue
            print(f'{display_name(info)} "{name}" deleted' + (" (dry run)" if args.dry_run else ""), flush=True)
        if args.wait and not args.dry_run:
            _wait_gone(client, [(i, ns, n) for i, ns, n in todo], args.wait_timeout)
    return rc


def _wait_gone(client: Client, items: Iterable[tuple[kinds.KindInfo, str, str]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(items)
    while pending:
        still = []
        for info, ns, name in pending:
            try:
                client.get(info.message, name, ns)
                still.append((info, ns, name))
            except errors.NotFound:
                pass
        pending = still
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(f"{display_name(i)}/{n}" for i, _, n in pending)
            raise CLIError(f"timed out waiting for deletion of {names}", "finalizers or a node agent may hold them")
        time.sleep(0.2)


# -- events ---------------------------------------------------------------------------------------


def cmd_events(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        ns = None if args.all_namespaces else namespace_of(args)
        evs: list[Any] = list(client.list_all(cluster_pb2.Event, ns).items)
        if args.for_object:
            k, _, n = args.for_object.partition("/")
            info = resolve_kind(k) if n else None
            name = n or k
            evs = [
                e
                for e in evs
                if e.involved_object.name == name and (info is None or e.involved_object.kind == info.kind)
            ]
        if args.types:
            wanted = {t.strip().lower() for t in args.types.split(",")}
            evs = [e for e in evs if (e.type or "Normal").lower() in wanted]
        evs.sort(key=_event_time)
        cols = columns.columns_for("event", all_namespaces=bool(args.all_namespaces))
        if evs:
            output.print_table([c.header for c in cols], columns.render_rows(evs, cols))
        elif not args.watch:
            output.info("No events found" + ("" if args.all_namespaces else f" in {ns} namespace") + ".")
        if args.watch:
            rev = client.current_revision("event")
            for ev in client.watch(cluster_pb2.Event, ns, rev):
                print("   ".join(columns.render_rows([ev.object], cols)[0]), flush=True)
    return 0


# -- registration ---------------------------------------------------------------------------------


def _selection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-l", "--selector", default="", help="label selector, e.g. app=web,tier!=db")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="across all namespaces")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parent = common_parent()
    g = subparsers.add_parser(
        "get",
        parents=[parent],
        help="list objects as a table, YAML, JSON or names",
        description="pinnace get TYPE [NAME...]",
    )
    g.add_argument("targets", nargs="*", metavar="TYPE[/NAME] [NAME...]")
    g.add_argument("-o", "--output", default="", help="wide, yaml, json or name")
    g.add_argument("--field-selector", default="", help="e.g. spec.nodeName=n1,status.phase=Running")
    g.add_argument("-w", "--watch", action="store_true", help="after listing, watch for changes")
    g.add_argument("--watch-timeout", type=float, default=0, help="stop watching after this many seconds")
    g.add_argument("--output-watch-events", action="store_true", help="prefix watch rows with the event type")
    g.add_argument("--show-labels", action="store_true")
    g.add_argument("--ignore-not-found", action="store_true")
    _selection_args(g)
    g.set_defaults(func=cmd_get)

    d = subparsers.add_parser("describe", parents=[parent], help="show an object in detail, with its recent events")
    d.add_argument("targets", nargs="+", metavar="TYPE[/NAME] [NAME...]")
    _selection_args(d)
    d.set_defaults(func=cmd_describe)

    x = subparsers.add_parser("delete", parents=[parent], help="delete objects by name, label or manifest")
    x.add_argument("targets", nargs="*", metavar="TYPE[/NAME] [NAME...]")
    x.add_argument("-f", "--filename", action="append", default=[], help="manifest file, directory or -")
    x.add_argument("-R", "--recursive", action="store_true")
    x.add_argument("--all", action="store_true", help="every object of the type in the namespace")
    x.add_argument("--grace-period", type=int, default=None, help="seconds; 0 with --force deletes at once")
    x.add_argument("--now", action="store_true", help="grace period 1")
    x.add_argument("--force", action="store_true", help="grace period 0: remove without waiting for the node")
    x.add_argument("--wait", action="store_true", help="wait until the objects are gone")
    x.add_argument("--wait-timeout", type=float, default=120.0)
    x.add_argument("--ignore-not-found", action="store_true")
    x.add_argument("--dry-run", action="store_true", help="only check, change nothing")
    _selection_args(x)
    x.set_defaults(func=cmd_delete)

    e = subparsers.add_parser("events", parents=[parent], help="list events, oldest first")
    e.add_argument("--for", dest="for_object", default="", help="only events about TYPE/NAME")
    e.add_argument("--types", default="", help="Normal,Warning")
    e.add_argument("-w", "--watch", action="store_true")
    e.add_argument("-A", "--all-namespaces", action="store_true")
    e.set_defaults(func=cmd_events)
