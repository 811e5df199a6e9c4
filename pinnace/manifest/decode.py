"""YAML node trees -> protobuf messages, generic over the API descriptors, with every problem located.

Field names are the descriptors' json_name (Kubernetes camelCase). IntOrString, Quantity and Timestamp
are read from their Kubernetes JSON forms. Positions of every field path are recorded so that problems
found later (validation) can be placed on a line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from pinnace.common import kinds
from pinnace.manifest import schema
from pinnace.manifest.nodes import (
    CONSTRUCTOR,
    KEY_VALUE,
    Bad,
    Position,
    describe,
    is_null,
    position,
    scalar,
    source_lines,
)
from pinnace.manifest.problems import Problem
from pinnace.manifest.schema import Desc, Field
from pinnace.manifest.special import bad_text, read_special
from pinnace.manifest.syntax import missing_space, missing_space_message
from pinnace.manifest.unsupported import is_unsupported


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
            CONSTRUCTOR.flatten_mapping(node)
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
            except Bad as exc:
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
            lines = source_lines(node)
            if len(lines) > 1:
                for line0, text in lines:
                    hit = missing_space(text)
                    if hit is not None:
                        self.error((line0 + 1, hit[0] + 1), path, missing_space_message(hit[1], hit[2]))
            else:
                m = KEY_VALUE.match(str(node.value).split("\n")[0])
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
        if is_null(node):
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
            if is_null(item):
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
            if is_null(vnode):
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
        if msg.DESCRIPTOR.full_name not in schema.SPECIAL:
            return False
        problem = read_special(node, msg)
        if problem is not None:
            self.error(node, path, problem)
        return True

    def text_ok(self, node: yaml.Node, value: str, path: str) -> bool:
        problem = bad_text(value)
        if problem is not None:
            self.error(node, path, problem)
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
        except Bad as exc:
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
