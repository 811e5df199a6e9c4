"""Objects -> Kubernetes-shaped dicts, YAML and JSON (apiVersion and kind first, camelCase, defaults omitted)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import yaml
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api import meta_pb2, object_pb2
from pinnace.common import kinds
from pinnace.manifest import schema
from pinnace.manifest.lookalikes import LOOKALIKES


def _special(msg: Message) -> tuple[bool, Any]:
    if isinstance(msg, meta_pb2.IntOrString):
        which = msg.WhichOneof("value")
        if which == "int_val":
            return True, msg.int_val
        return True, msg.str_val
    if isinstance(msg, meta_pb2.Quantity):
        return True, _quantity_value(msg.value)
    if isinstance(msg, Timestamp):
        return True, msg.ToJsonString()
    return False, None


def _quantity_value(text: str) -> Any:
    """Quantities print as written: a bare whole number stays a number, everything else text."""
    if text.isdigit() and (text == "0" or not text.startswith("0")):
        return int(text)
    return text


def message_to_dict(msg: Message) -> dict[str, Any]:
    """Fields in declaration order, camelCase, with unset and default values left out."""
    out: dict[str, Any] = {}
    for fd in msg.DESCRIPTOR.fields:
        value = getattr(msg, fd.name)
        if schema.is_map(fd):
            if len(value):
                out[fd.json_name] = {k: _value(value[k]) for k in sorted(value)}
        elif schema.is_repeated(fd):
            if len(value):
                out[fd.json_name] = [_value(v) for v in value]
        elif schema.is_message(fd) or fd.has_presence:
            if msg.HasField(fd.name):
                out[fd.json_name] = _value(value)
        elif value != fd.default_value:
            out[fd.json_name] = value
    return out


def _value(value: Any) -> Any:
    if isinstance(value, Message):
        special, plain = _special(value)
        return plain if special else message_to_dict(value)
    return value


def to_dict(obj: object_pb2.Object | Message) -> dict[str, Any]:
    """A Kubernetes-shaped dict of an Object (or a kind message): apiVersion, kind, then its fields."""
    wrapped = kinds.wrap(obj)
    info = kinds.kind_of(wrapped)
    out: dict[str, Any] = {"apiVersion": info.api_version, "kind": info.kind}
    out.update(message_to_dict(kinds.unwrap(wrapped)))
    return out


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key like kubectl prints them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if any(ch in LOOKALIKES for ch in data):  # quoted, so loading it back does not flag them
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def dump_yaml(objs: Iterable[object_pb2.Object | Message]) -> str:
    """YAML documents separated by `---`."""
    docs = [to_dict(o) for o in objs]
    return yaml.dump_all(
        docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1_000_000
    )


def dump_json(objs: Iterable[object_pb2.Object | Message]) -> str:
    """One object as a JSON object; several as a Kubernetes List."""
    docs = [to_dict(o) for o in objs]
    if len(docs) == 1:
        return json.dumps(docs[0], indent=2, ensure_ascii=False) + "\n"
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}, indent=2, ensure_ascii=False) + "\n"
