"""What the API descriptors say about fields: Kubernetes JSON names, special types, where a field belongs."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cache
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from pinnace.common import kinds

# Descriptors are typed loosely: the upb and pure-Python classes differ for mypy.
Desc = Any
Field = Any

INT_OR_STRING = "pinnace.v1.IntOrString"
QUANTITY = "pinnace.v1.Quantity"
TIMESTAMP = "google.protobuf.Timestamp"
SPECIAL = frozenset({INT_OR_STRING, QUANTITY, TIMESTAMP})

INT_RANGES: dict[int, tuple[int, int]] = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
FLOAT_TYPES = frozenset({FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE})

# Keys a top-level manifest has that are not fields of the kind's message.
ENVELOPE_KEYS = ("apiVersion", "kind")


def is_map(field: Field) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def is_repeated(field: Field) -> bool:
    # `label` is deprecated in newer protobuf releases; is_repeated replaces it where present.
    rep = getattr(field, "is_repeated", None)
    if isinstance(rep, bool):
        return rep
    return bool(field.label == FieldDescriptor.LABEL_REPEATED)


def is_message(field: Field) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE


@cache
def fields_by_json(desc: Desc) -> dict[str, Field]:
    return {f.json_name: f for f in desc.fields}


def _norm(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def suggest(name: str, desc: Desc) -> str | None:
    """The field of desc the user probably meant (case/underscore slips first, then close spellings)."""
    names = list(fields_by_json(desc))
    for n in names:
        if _norm(n) == _norm(name):
            return n
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return close[0] if close else None


def _walk(desc: Desc, prefix: str, out: dict[str, set[str]], kind: str, depth: int) -> None:
    if depth > 12:
        return
    for f in desc.fields:
        path = f"{prefix}.{f.json_name}" if prefix else f.json_name
        out.setdefault(path, set()).add(kind)
        if is_message(f) and not is_map(f) and f.message_type.full_name not in SPECIAL:
            _walk(f.message_type, path, out, kind, depth + 1)


@cache
def _paths() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for info in kinds.KINDS:
        _walk(info.message.DESCRIPTOR, "", out, info.kind, 0)
    return out


def kinds_with_path(path: str) -> list[str]:
    """Kinds that have this field path (list indices and map keys stripped), e.g. "spec.capacity"."""
    return sorted(_paths().get(path, set()))


def paths_of_kind(kind: str) -> list[str]:
    """Every field path (no indices) of a kind, shortest first."""
    return sorted((p for p, ks in _paths().items() if kind in ks), key=lambda p: (p.count("."), p))


@cache
def _messages() -> dict[str, Desc]:
    out: dict[str, Desc] = {}

    def visit(d: Desc) -> None:
        if d.full_name in out or d.GetOptions().map_entry:
            return
        out[d.full_name] = d
        for f in d.fields:
            if is_message(f):
                visit(f.message_type)

    for info in kinds.KINDS:
        visit(info.message.DESCRIPTOR)
    return out


def messages_with_field(name: str) -> list[str]:
    """Short names of the messages that have a field with this JSON name."""
    return sorted(d.name for d in _messages().values() if name in fields_by_json(d))


@dataclass(frozen=True)
class Placement:
    """Where a bare fragment fits: the kind and the path of the message holding its keys."""

    kind: str
    path: str


@cache
def _placements() -> list[tuple[str, str, Desc]]:
    out: list[tuple[str, str, Desc]] = []

    def visit(kind: str, path: str, d: Desc, depth: int) -> None:
        if depth > 8:
            return
        out.append((kind, path, d))
        for f in d.fields:
            if is_message(f) and not is_map(f) and f.message_type.full_name not in SPECIAL:
                visit(kind, f"{path}.{f.json_name}" if path else f.json_name, f.message_type, depth + 1)

    for info in kinds.KINDS:
        visit(info.kind, "", info.message.DESCRIPTOR, 0)
    return out


def place_fragment(keys: list[str]) -> Placement | None:
    """The shallowest place in any kind whose message has all these keys as fields."""
    if not keys:
        return None
    best: tuple[int, int, Placement] | None = None
    order = {info.kind: i for i, info in enumerate(kinds.KINDS)}
    for kind, path, d in _placements():
        names = fields_by_json(d)
        if path and all(k in names for k in keys):
            rank = (path.count("."), order.get(kind, 99))
            if best is None or rank < best[:2]:
                best = (rank[0], rank[1], Placement(kind, path))
    return best[2] if best else None
