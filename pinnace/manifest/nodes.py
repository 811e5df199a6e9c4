"""YAML node helpers: positions, scalar values by YAML tag, and how a node reads to a user."""

from __future__ import annotations

import re
from typing import Any

import yaml

_STR = "tag:yaml.org,2002:str"
NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
KEY_VALUE = re.compile(r"^([A-Za-z0-9_.\-/]+)(\s+:\s*|:)(\S.*)$")
CONSTRUCTOR = yaml.constructor.SafeConstructor()

Position = tuple[int, int]


def position(node: yaml.Node) -> Position:
    mark = node.start_mark
    if mark is None:
        return (0, 0)
    return (mark.line + 1, mark.column + 1)


class Bad(Exception):
    """A scalar that cannot be read as the YAML type its tag says."""


def scalar(node: yaml.ScalarNode) -> Any:
    """The Python value of a scalar node: None, bool, int, float or str (timestamps stay text)."""
    tag = node.tag
    try:
        if tag == NULL:
            return None
        if tag == _BOOL:
            return CONSTRUCTOR.construct_yaml_bool(node)
        if tag == _INT:
            return CONSTRUCTOR.construct_yaml_int(node)
        if tag == _FLOAT:
            return CONSTRUCTOR.construct_yaml_float(node)
    except (ValueError, TypeError, OverflowError, IndexError, yaml.YAMLError) as exc:
        raise Bad(f"{node.value!r} is not a valid {tag.rsplit(':', 1)[-1]}") from exc
    if tag in (_STR, _TIMESTAMP, _MERGE):
        return str(node.value)
    raise Bad(f"the YAML tag {tag} is not supported here; remove it")


def describe(node: yaml.Node) -> str:
    """How a node reads to a user: "a list", "a mapping", "the number 3", "the text \"x\""."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if not isinstance(node, yaml.ScalarNode):
        return "a list"
    try:
        value = scalar(node)
    except Bad:
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


def source_lines(node: yaml.Node) -> list[tuple[int, str]]:
    """(0-based line, text) of the source lines a node spans, when the marks carry the source."""
    start, end = node.start_mark, node.end_mark
    buffer = getattr(start, "buffer", None)
    if start is None or end is None or not isinstance(buffer, str):
        return []
    lines = buffer.split("\n")
    return [(i, lines[i]) for i in range(start.line, min(end.line, len(lines) - 1) + 1)]


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == NULL
