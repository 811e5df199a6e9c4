"""YAML node trees -> protobuf messages, generic over the API descriptors, with every problem located.

Field names are the descriptors' json_name (Kubernetes camelCase). IntOrString, Quantity and Timestamp
are read from their Kubernetes JSON forms. Positions of every field path are recorded so that problems
found later (validation) can be placed on a line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api import meta_pb2
from pinnace.common import kinds
from pinnace.common.quantity import QuantityError, parse_quantity
from pinnace.manifest import schema
from pinnace.manifest.problems import Problem
from pinnace.manifest.schema import Desc, Field
from pinnace.manifest.syntax import missing_space, missing_space_message
from pinnace.manifest.unsupported import is_unsupported

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
_KEY_VALUE = re.compile(r"^([A-Za-z0-9_.\-/]+)(\s+:\s*|:)(\S.*)$")
_CONSTRUCTOR = yaml.constructor.SafeConstructor()

Position = tuple[int, int]


def position(node: yaml.Node) -> Position:
    mark = node.start_mark
    if mark is None:
        return (0, 0)
    return (mark.line + 1, mark.column + 1)


class _Bad(Exception):
    """A scalar that cannot be read as the YAML type its tag says."""


def scalar(node: yaml.ScalarNode) -> Any:
    """The Python value of a scalar node: None, bool, int, float or str (timestamps stay text)."""
    tag = node.tag
    try:
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return _CONSTRUCTOR.construct_yaml_bool(node)
        if tag == _INT:
            return _CONSTRUCTOR.construct_yaml_int(node)
        if tag == _FLOAT:
            return _CONSTRUCTOR.construct_yaml_float(node)
    except (ValueError, TypeError, OverflowError, IndexError, yaml.YAMLError) as exc:
        raise _Bad(f"{node.value!r} is not a valid {tag.rsplit(':', 1)[-1]}") from exc
    if tag in (_STR, _TIMESTAMP, _MERGE):
        return str(node.value)
    raise _Bad(f"the YAML tag {tag} is not supported here; remove it")


def describe(node: yaml.Node) -> str:
    """How a node reads to a user: "a list", "a mapping", "the number 3", "the text \"x\""."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if not isinstance(node, yaml.ScalarNode):
        return "a list"
    try:
        value = scalar(node)
    except _Bad:
        return f"the value {node.value!r}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {node.value}"
    if isinstance(value, (int, float)):
        return f"the number {node.value}"
    text = str(value)
    if len(text) > 60:
        text = text[:57] + "..."
    quoted = " quoted" if node.style in ("'", '"') else ""
    return f'the{quoted} text "{text}"'


@dataclass
class Decoder:
    """Decodes one document; collects problems and the position of every field path it saw."""

    filename: str
    kind: str = ""
    problems: list[Problem] = field(default_factory=list)
    positions: dict[str, Position] = field(default_factory=dict)

    def error(self, node_or_pos: yaml.Node | Position, path: str, message: str) -> None:
        line, col = node_or_pos if isinstance(node_or_pos, tuple) else position(node_or_pos)
        self.problems.append(Problem(self.filename, line, col, path, message))

    # --- messages -------------------------------------------------------------------------------

    def mapping_items(self, node: yaml.MappingNode, path: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        """(key, key node, value node) with merge keys applied, non-text and duplicate keys reported."""
        try:
            _CONSTRUCTOR.flatten_mapping(node)
        except (yaml.YAMLError, RecursionError, TypeError, AttributeError) as exc:
            self.error(node, path, f"bad merge key (<<): {exc}")
        items: list[tuple[str, yaml.Node, yaml.Node]] = []
        seen: dict[str, Position] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                self.error(knode, path, f"a key must be text, not {describe(knode)}")
                continue
            try:
                key = scalar(knode)
            except _Bad as exc:
                self.error(knode, path, str(exc))
                continue
            if key is None or not isinstance(key, str):
                self.error(knode, path, f"a key must be text, not {describe(knode)}; quote it")
                continue
            if not self.text_ok(knode, key, path):
                continue
            if key in seen:
                line = seen[key][0]
                self.error(knode, join(path, key), f"duplicate field (first given on line {line})")
                continue
            seen[key] = position(knode)
            items.append((key, knode, vnode))
        return items

    def message(self, node: yaml.Node, msg: Message, path: str, skip: tuple[str, ...] = ()) -> None:
        desc = msg.DESCRIPTOR
        if not isinstance(node, yaml.MappingNode):
            self.expected_mapping(node, path, desc.name)
            return
        by_json = schema.fields_by_json(desc)
        for key, knode, vnode in self.mapping_items(node, path):
            if key in skip:
                continue
            fpath = join(path, key)
            self.positions.setdefault(fpath, position(knode))
            fd = by_json.get(key)
            if fd is None:
                self.unknown_field(knode, fpath, key, desc)
                continue
            self.field(vnode, msg, fd, fpath)

    def expected_mapping(self, node: yaml.Node, path: str, what: str) -> None:
        msg = f"expected a mapping (the fields of {what}), got {describe(node)}"
        if isinstance(node, yaml.ScalarNode) and node.style is None:
            lines = _source_lines(node)
            if len(lines) > 1:
                for line0, text in lines:
                    hit = missing_space(text)
                    if hit is not None:
                        self.error((line0 + 1, hit[0] + 1), path, missing_space_message(hit[1], hit[2]))
            else:
                m = _KEY_VALUE.match(str(node.value).split("\n")[0])
                if m:
                    msg += (
                        f'; YAML needs a space after the colon (and none before it) to make "{m.group(1)}" a key: '
                        f'write "{m.group(1)}: {m.group(3)}"'
                    )
        self.error(node, path, msg)

    def unknown_field(self, knode: yaml.Node, path: str, key: str, desc: Desc) -> None:
        owner = self.owner_name(desc)
        if is_unsupported(desc.full_name, key):
            self.error(knode, path, f"field {key!r} of {owner} is not supported yet by Pinnace")
            return
        msg = f"unknown field for {owner}"
        bare = strip_indices(path)
        others = [k for k in schema.kinds_with_path(bare) if k != self.kind]
        if others:
            msg += f" (it belongs to {' and '.join(others)})"
        parent = bare.rpartition(".")[0]
        elsewhere = [q for q in schema.paths_of_kind(self.kind) if q.rpartition(".")[2] == key and q != bare]
        elsewhere.sort(key=lambda q: (-_shared_segments(q, parent), len(q)))
        guess = schema.suggest(key, desc)
        if elsewhere:
            msg += f"; in a {self.kind} it goes at {elsewhere[0]}"
        elif guess is not None and guess != key:
            msg += f"; did you mean {guess!r}?"
        elif not others:
            holders = [m for m in schema.messages_with_field(key) if m != desc.name]
            if holders:
                msg += f" (a field of {', '.join(holders[:3])} elsewhere)"
        self.error(knode, path, msg)

    def owner_name(self, desc: Desc) -> str:
        """The kind for the object and its spec/status messages, else the message's own name."""
        if self.kind and (desc.name == self.kind or desc.name in (self.kind + "Spec", self.kind + "Status")):
            return self.kind
        return desc.name

    # --- fields ---------------------------------------------------------------------------------

    def field(self, node: yaml.Node, msg: Message, fd: Field, path: str) -> None:
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL:
            return  # null means "not set", as in Kubernetes
        if schema.is_map(fd):
            self.map_field(node, getattr(msg, fd.name), fd, path)
        elif schema.is_repeated(fd):
            self.repeated_field(node, msg, fd, path)
        elif schema.is_message(fd):
            sub = getattr(msg, fd.name)
            if self.special(node, sub, path):
                return
            if isinstance(node, yaml.MappingNode):
                sub.SetInParent()
            self.message(node, sub, path)
        else:
            value = self.scalar_value(node, fd, path)
            if value is not None:
                setattr(msg, fd.name, value)

    def repeated_field(self, node: yaml.Node, msg: Message, fd: Field, path: str) -> None:
        if not isinstance(node, yaml.SequenceNode):
            text = f"expected a list, got {describe(node)}"
            if isinstance(node, yaml.ScalarNode) and str(node.value)[:1] in "\u2010\u2011\u2012\u2013\u2014\u2212":
                text += " (it starts with a look-alike of '-', so YAML did not see a list item)"
            elif isinstance(node, yaml.MappingNode):
                text += "; start each item with '- '"
            elif fd.type == FieldDescriptor.TYPE_STRING and isinstance(node, yaml.ScalarNode):
                text += f"; write it as a one-item list: [{node.value!r}]" if node.value else ""
            self.error(node, path, text)
            return
        container = getattr(msg, fd.name)
        for i, item in enumerate(node.value):
            ipath = f"{path}[{i}]"
            self.positions.setdefault(ipath, position(item))
            if isinstance(item, yaml.ScalarNode) and item.tag == _NULL:
                self.error(item, ipath, "empty list item")
                continue
            if schema.is_message(fd):
                sub = container.add()
                if not self.special(item, sub, ipath):
                    self.message(item, sub, ipath)
            else:
                value = self.scalar_value(item, fd, ipath)
                if value is not None:
                    container.append(value)

    def map_field(self, node: yaml.Node, container: Any, fd: Field, path: str) -> None:
        if not isinstance(node, yaml.MappingNode):
            self.error(node, path, f"expected a mapping of names to values, got {describe(node)}")
            return
        value_fd = fd.message_type.fields_by_name["value"]
        for key, knode, vnode in self.mapping_items(node, path):
            kpath = f"{path}[{key}]"
            self.positions.setdefault(kpath, position(knode))
            if isinstance(vnode, yaml.ScalarNode) and vnode.tag == _NULL:
                self.error(vnode, kpath, 'no value; write "" for an empty one')
                continue
            if schema.is_message(value_fd):
                sub = container[key]
                if not self.special(vnode, sub, kpath):
                    self.message(vnode, sub, kpath)
            else:
                value = self.scalar_value(vnode, value_fd, kpath)
                if value is not None:
                    container[key] = value

    def special(self, node: yaml.Node, msg: Message, path: str) -> bool:
        """Read IntOrString, Quantity and Timestamp; False for ordinary messages."""
        name = msg.DESCRIPTOR.full_name
        if name not in schema.SPECIAL:
            return False
        if not isinstance(node, yaml.ScalarNode):
            expected = {
                schema.INT_OR_STRING: "a number or a name",
                schema.QUANTITY: 'a quantity such as 500m, 1, "2.5" or 3Gi',
                schema.TIMESTAMP: "a time such as 2024-01-31T12:00:00Z",
            }[name]
            self.error(node, path, f"expected {expected}, got {describe(node)}")
            return True
        try:
            value = scalar(node)
        except _Bad as exc:
            self.error(node, path, str(exc))
            return True
        if name == schema.INT_OR_STRING:
            self.int_or_string(node, value, msg, path)
        elif name == schema.QUANTITY:
            self.quantity(node, value, msg, path)
        else:
            self.timestamp(node, value, msg, path)
        return True

    def int_or_string(self, node: yaml.ScalarNode, value: Any, msg: Message, path: str) -> None:
        assert isinstance(msg, meta_pb2.IntOrString)
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            self.error(node, path, f"expected a whole number or a name, got {describe(node)}")
        elif isinstance(value, int):
            if not -(2**31) <= value < 2**31:
                self.error(node, path, f"{value} is out of range for a 32-bit integer")
            else:
                msg.int_val = value
        elif self.text_ok(node, value, path):
            msg.str_val = value

    def quantity(self, node: yaml.ScalarNode, value: Any, msg: Message, path: str) -> None:
        assert isinstance(msg, meta_pb2.Quantity)
        if isinstance(value, bool) or value is None:
            self.error(node, path, f"expected a quantity such as 500m, 1 or 3Gi, got {describe(node)}")
            return
        text = str(node.value).strip() if node.style is None else str(value).strip()
        try:
            parse_quantity(text)
        except QuantityError as exc:
            self.error(node, path, str(exc))
            return
        if self.text_ok(node, text, path):
            msg.value = text

    def timestamp(self, node: yaml.ScalarNode, value: Any, msg: Message, path: str) -> None:
        assert isinstance(msg, Timestamp)
        if not isinstance(value, str) or isinstance(value, bool):
            self.error(node, path, f"expected an RFC 3339 time such as 2024-01-31T12:00:00Z, got {describe(node)}")
            return
        try:
            msg.FromJsonString(value.strip())
            return
        except (ValueError, TypeError, OverflowError):
            pass
        try:  # what yaml.safe_load gives for a time: "2024-01-31 12:00:00+00:00"
            when = datetime.fromisoformat(value.strip())
            if when.tzinfo is None:
                raise ValueError("no time zone")
            msg.FromDatetime(when)
        except (ValueError, TypeError, OverflowError):
            self.error(
                node, path, f'"{value}" is not an RFC 3339 time; write e.g. 2024-01-31T12:00:00Z (with a time zone)'
            )

    def text_ok(self, node: yaml.Node, value: str, path: str) -> bool:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.error(node, path, "the text holds an invalid character (a lone surrogate escape); remove it")
            return False
        return True

    def scalar_value(self, node: yaml.Node, fd: Field, path: str) -> Any:
        """The value for a scalar field, or None after reporting why it cannot be one."""
        t = fd.type
        if not isinstance(node, yaml.ScalarNode):
            want = {FieldDescriptor.TYPE_STRING: "text", FieldDescriptor.TYPE_BOOL: "true or false"}.get(t, "a number")
            self.error(node, path, f"expected {want}, got {describe(node)}")
            return None
        try:
            value = scalar(node)
        except _Bad as exc:
            self.error(node, path, str(exc))
            return None
        if value is None:
            return None
        if t == FieldDescriptor.TYPE_STRING:
            if isinstance(value, str):
                return value if self.text_ok(node, value, path) else None
            self.error(node, path, f'expected text, got {describe(node)}; quote it: "{node.value}"')
            return None
        if t == FieldDescriptor.TYPE_BOOL:
            if isinstance(value, bool):
                return value
            hint = "; remove the quotes" if isinstance(value, str) and value.lower() in ("true", "false") else ""
            self.error(node, path, f"expected true or false, got {describe(node)}{hint}")
            return None
        if t in schema.INT_RANGES:
            if isinstance(value, int) and not isinstance(value, bool):
                lo, hi = schema.INT_RANGES[t]
                if not lo <= value <= hi:
                    self.error(node, path, f"{value} is out of range ({lo} to {hi})")
                    return None
                return value
            hint = ""
            if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
                hint = "; remove the quotes"
            elif isinstance(value, float):
                hint = "; it must be a whole number"
            self.error(node, path, f"expected a whole number, got {describe(node)}{hint}")
            return None
        if t in schema.FLOAT_TYPES:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            self.error(node, path, f"expected a number, got {describe(node)}")
            return None
        self.error(node, path, f"fields of type {fd.type} cannot be read from a manifest")
        return None


def _source_lines(node: yaml.Node) -> list[tuple[int, str]]:
    """(0-based line, text) of the source lines a node spans, when the marks carry the source."""
    start, end = node.start_mark, node.end_mark
    buffer = getattr(start, "buffer", None)
    if start is None or end is None or not isinstance(buffer, str):
        return []
    lines = buffer.split("\n")
    return [(i, lines[i]) for i in range(start.line, min(end.line, len(lines) - 1) + 1)]


def _shared_segments(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a.split("."), b.split("."), strict=False):
        if x != y:
            break
        n += 1
    return n


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def strip_indices(path: str) -> str:
    """ "spec.containers[0].image" -> "spec.containers.image"; map keys go too."""
    return re.sub(r"\[[^\]]*\]", "", path)


def kind_info_for(name: str) -> kinds.KindInfo | None:
    """The kind whose Kind name or alias is exactly this (manifests are case-sensitive)."""
    for info in kinds.KINDS:
        if name == info.kind or name in info.aliases:
            return info
    return None
