"""`explain KIND[.field.path]`: documentation of a kind and its fields from the proto comments.

The comments come from proto/ compiled at run time with grpc_tools' protoc (``--include_source_info``)
when the source tree is present (a development checkout); otherwise from ``descriptors.binpb`` next to
this module if it was generated (``python -m pinnace.cli.explain --write``); otherwise fields are
listed without descriptions. The structure always comes from the generated API in pinnace.api.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from pinnace.cli.context import CLIError, resolve_kind

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"
SHIPPED = Path(__file__).with_name("descriptors.binpb")

_TYPE_NAMES = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BOOL: "boolean",
    FieldDescriptor.TYPE_INT32: "integer",
    FieldDescriptor.TYPE_INT64: "integer",
    FieldDescriptor.TYPE_UINT32: "integer",
    FieldDescriptor.TYPE_UINT64: "integer",
    FieldDescriptor.TYPE_DOUBLE: "number",
    FieldDescriptor.TYPE_FLOAT: "number",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_ENUM: "enum",
}


def compile_descriptor_set() -> bytes | None:
    """proto/ compiled with comments, or None when protoc or the sources are not available."""
    files = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.glob("pinnace/v1/*.proto"))
    if not files:
        return None
    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError:
        return None
    include = str(Path(grpc_tools.__file__).parent / "_proto")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.binpb"
        rc = protoc.main(
            [
                "protoc",
                f"-I{PROTO_ROOT}",
                f"-I{include}",
                "--include_source_info",
                f"--descriptor_set_out={out}",
                *files,
            ]
        )
        if rc != 0 or not out.exists():
            return None
        return out.read_bytes()


@functools.lru_cache(maxsize=1)
def comments() -> dict[str, str]:
    """Full name ("pinnace.v1.PodSpec", "pinnace.v1.PodSpec.containers") -> leading comment."""
    data = compile_descriptor_set()
    if data is None and SHIPPED.exists():
        data = SHIPPED.read_bytes()
    if data is None:
        return {}
    fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    out: dict[str, str] = {}
    for f in fds.file:
        by_path = {
            tuple(loc.path): (loc.leading_comments or loc.trailing_comments).strip()
            for loc in f.source_code_info.location
        }
        _walk(list(f.message_type), f.package, (4,), by_path, out)
    return out


def _walk(
    msgs: list[descriptor_pb2.DescriptorProto],
    prefix: str,
    path: tuple[int, ...],
    by_path: dict[tuple[int, ...], str],
    out: dict[str, str],
) -> None:
    for i, m in enumerate(msgs):
        mpath = (*path, i)
        full = f"{prefix}.{m.name}"
        if by_path.get(mpath):
            out[full] = by_path[mpath]
        for j, fld in enumerate(m.field):
            text = by_path.get((*mpath, 2, j))
            if text:
                out[f"{full}.{fld.name}"] = text
        _walk(list(m.nested_type), full, (*mpath, 3), by_path, out)


def type_name(f: FieldDescriptor) -> str:
    if f.message_type is not None:
        if f.message_type.GetOptions().map_entry:
            return f"map[string]{type_name(f.message_type.fields_by_name['value'])}"
        base = f.message_type.name
        if base in ("IntOrString",):
            base = "IntOrString (integer or string)"
        elif base == "Quantity":
            base = "Quantity (e.g. 500m, 128Mi)"
        elif base == "Timestamp":
            base = "string (RFC 3339 time)"
    else:
        base = _TYPE_NAMES.get(f.type, "value")
    if f.is_repeated:
        return f"[]{base}"
    return base


def _find(desc: Descriptor, name: str) -> FieldDescriptor | None:
    low = name.lower()
    for f in desc.fields:
        if low in (f.name.lower(), f.json_name.lower(), f.camelcase_name.lower()):
            return f
    return None


def explain_text(target: str, recursive: bool = False) -> str:
    kind_name, _, path = target.partition(".")
    info = resolve_kind(kind_name)
    docs = comments()
    desc: Any = info.message.DESCRIPTOR
    field: FieldDescriptor | None = None
    walked: list[str] = []
    for part in [p for p in path.split(".") if p]:
        if desc is None:
            raise CLIError(f"{'.'.join(walked)} has no fields", "explain its parent instead", usage=True)
        field = _find(desc, part)
        if field is None:
            known = ", ".join(f.json_name for f in desc.fields)
            raise CLIError(f"field {part!r} does not exist in {desc.name}", f"fields: {known}", usage=True)
        walked.append(field.json_name)
        mt = field.message_type
        if mt is not None and mt.GetOptions().map_entry:
            mt = mt.fields_by_name["value"].message_type
        desc = mt
    lines = [f"KIND:       {info.kind}", f"VERSION:    {info.api_version}", ""]
    if field is not None:
        lines += [f"FIELD:      {'.'.join(walked)} <{type_name(field)}>", ""]
        text = docs.get(field.full_name) or (docs.get(desc.full_name, "") if desc is not None else "")
    else:
        text = docs.get(desc.full_name, "")
    lines.append("DESCRIPTION:")
    lines += [f"    {line}".rstrip() for line in (text or "<no description>").splitlines()]
    if desc is not None and desc.fields and desc.full_name not in ("pinnace.v1.IntOrString", "pinnace.v1.Quantity"):
        lines += ["", "FIELDS:"]
        _fields(desc, docs, lines, 1, recursive, set())
    return "\n".join(lines) + "\n"


def _fields(
    desc: Descriptor, docs: dict[str, str], lines: list[str], depth: int, recursive: bool, seen: set[str]
) -> None:
    pad = "  " * depth
    for f in desc.fields:
        lines.append(f"{pad}{f.json_name}\t<{type_name(f)}>")
        if not recursive:
            doc = docs.get(f.full_name, "")
            for line in doc.splitlines():
                lines.append(f"{pad}  {line}".rstrip())
            lines.append("")
        elif f.message_type is not None and f.message_type.full_name not in seen:
            mt: Any = f.message_type
            if mt.GetOptions().map_entry:
                mt = mt.fields_by_name["value"].message_type
            if (
                mt is not None
                and mt.full_name.startswith("pinnace.")
                and mt.full_name
                not in (
                    "pinnace.v1.IntOrString",
                    "pinnace.v1.Quantity",
                )
            ):
                _fields(mt, docs, lines, depth + 1, recursive, seen | {mt.full_name})


def cmd_explain(args: argparse.Namespace) -> int:
    if not args.target:
        from pinnace.common import kinds

        print("Kinds (pinnace explain KIND[.field]):")
        for k in sorted(kinds.KINDS, key=lambda k: k.kind):
            short = f" ({', '.join(k.short_names)})" if k.short_names else ""
            print(f"  {k.kind:<24} {k.api_version:<24} {k.plural}{short}")
        return 0
    sys.stdout.write(explain_text(args.target, args.recursive))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    e = subparsers.add_parser("explain", help="document a kind or field, from the API's comments")
    e.add_argument("target", nargs="?", metavar="KIND[.field.path]")
    e.add_argument("--recursive", action="store_true", help="print every nested field name")
    e.set_defaults(func=cmd_explain)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        data = compile_descriptor_set()
        if data is None:
            sys.exit("protoc (grpcio-tools) or proto/ not available")
        SHIPPED.write_bytes(data)
        print(f"wrote {SHIPPED}")
