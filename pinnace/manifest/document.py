"""One YAML document -> one or more Objects: apiVersion/kind dispatch, kind: List, fragments."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from pinnace.api import meta_pb2, object_pb2
from pinnace.common import kinds
from pinnace.manifest.decode import Decoder, kind_info_for
from pinnace.manifest.nodes import Position, describe, scalar
from pinnace.manifest.parse import fragment_message
from pinnace.manifest.problems import Problem
from pinnace.manifest.schema import place_fragment


@dataclass
class Decoded:
    """An object with the positions of its field paths, or None if it had problems."""

    obj: object_pb2.Object | None
    positions: dict[str, Position] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def _known_kinds() -> str:
    return ", ".join(f"{k.kind} ({k.api_version})" for k in sorted(kinds.KINDS, key=lambda k: k.kind))


def _text(node: yaml.Node | None) -> str | None:
    if not isinstance(node, yaml.ScalarNode):
        return None
    try:
        value = scalar(node)
    except Exception:
        return None
    return value if isinstance(value, str) else None


def decode_document(node: yaml.Node, filename: str) -> list[Decoded]:
    """Decode one document; `kind: List` (apiVersion v1) yields its items."""
    dec = Decoder(filename)
    if not isinstance(node, yaml.MappingNode):
        dec.expected_mapping(node, "", "a Kubernetes object: apiVersion, kind, metadata, ...")
        return [Decoded(None, problems=dec.problems)]
    items = dec.mapping_items(node, "")
    by_key = {k: (kn, vn) for k, kn, vn in items}
    api_node = by_key.get("apiVersion", (None, None))[1]
    kind_node = by_key.get("kind", (None, None))[1]
    if api_node is None and kind_node is None:
        keys = [k for k, _, _ in items]
        dec.error(node, "", fragment_message(keys, place_fragment(keys)))
        return [Decoded(None, problems=dec.problems)]
    api_version, kind_name = _text(api_node), _text(kind_node)
    if kind_node is None or kind_name is None:
        dec.error(kind_node or node, "kind", "missing kind (the text naming the kind, e.g. Pod)")
    if api_node is None or api_version is None:
        dec.error(api_node or node, "apiVersion", "missing apiVersion (e.g. v1 or apps/v1)")
    if kind_name == "List" and api_version == "v1" and not dec.problems:
        return _decode_list(by_key, dec, filename)
    info = kind_info_for(kind_name) if kind_name is not None else None
    if info is None:
        if kind_name is not None:
            msg = f"unknown kind {kind_name!r}"
            try:
                near = kinds.lookup(kind_name)
                msg += f"; did you mean {near.kind!r}?"
            except kinds.UnknownKind:
                msg += f" (apiVersion {api_version!r})" if api_version else ""
                msg += f"; Pinnace knows: {_known_kinds()}"
            dec.error(kind_node or node, "kind", msg)
        meta_node = by_key.get("metadata", (None, None))[1]
        if meta_node is not None:  # still check what is generic, so all problems show at once
            dec.message(meta_node, meta_pb2.ObjectMeta(), "metadata")
        return [Decoded(None, problems=dec.problems)]
    if api_version is not None and api_version != info.api_version:
        also = f" (known as {info.kind})" if kind_name != info.kind else ""
        dec.error(
            api_node or node,
            "apiVersion",
            f"apiVersion {api_version!r} with kind {kind_name!r} is not a known kind: {kind_name}{also} is "
            f"served by apiVersion {info.api_version!r}; Pinnace knows: {_known_kinds()}",
        )
    dec.kind = info.kind
    obj = object_pb2.Object()
    msg = getattr(obj, info.key)
    msg.SetInParent()
    dec.message(node, msg, "", skip=("apiVersion", "kind"))
    if dec.problems:
        return [Decoded(None, dec.positions, dec.problems)]
    return [Decoded(obj, dec.positions)]


def _decode_list(by_key: dict[str, tuple[yaml.Node, yaml.Node]], dec: Decoder, filename: str) -> list[Decoded]:
    items_node = by_key.get("items", (None, None))[1]
    if not isinstance(items_node, yaml.SequenceNode):
        where = items_node if items_node is not None else by_key["kind"][1]
        got = describe(items_node) if items_node is not None else "nothing"
        dec.error(where, "items", f"a List needs items: a list of objects, got {got}")
        return [Decoded(None, problems=dec.problems)]
    out: list[Decoded] = []
    for i, item in enumerate(items_node.value):
        for d in decode_document(item, filename):
            prefix = f"items[{i}]"
            d.problems = [
                Problem(p.file, p.line, p.column, f"{prefix}.{p.path}" if p.path else prefix, p.message)
                for p in d.problems
            ]
            out.append(d)
    return out
