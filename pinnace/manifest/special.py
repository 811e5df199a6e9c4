"""The Kubernetes JSON forms of IntOrString (a number or a name), Quantity (kept as written) and Timestamp."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import yaml
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api import meta_pb2
from pinnace.common.quantity import QuantityError, parse_quantity
from pinnace.manifest import schema
from pinnace.manifest.nodes import Bad, describe, scalar

_EXPECTED = {
    schema.INT_OR_STRING: "a number or a name",
    schema.QUANTITY: 'a quantity such as 500m, 1, "2.5" or 3Gi',
    schema.TIMESTAMP: "a time such as 2024-01-31T12:00:00Z",
}


def bad_text(value: str) -> str | None:
    """Why a text cannot be stored (protobuf strings must be valid UTF-8), or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "the text holds an invalid character (a lone surrogate escape); remove it"
    return None


def read_special(node: yaml.Node, msg: Message) -> str | None:
    """Fill an IntOrString, Quantity or Timestamp from a node; the problem as text, or None."""
    name = msg.DESCRIPTOR.full_name
    if not isinstance(node, yaml.ScalarNode):
        return f"expected {_EXPECTED[name]}, got {describe(node)}"
    try:
        value = scalar(node)
    except Bad as exc:
        return str(exc)
    if isinstance(msg, meta_pb2.IntOrString):
        return _int_or_string(node, value, msg)
    if isinstance(msg, meta_pb2.Quantity):
        return _quantity(node, value, msg)
    assert isinstance(msg, Timestamp)
    return _timestamp(node, value, msg)


def _int_or_string(node: yaml.ScalarNode, value: Any, msg: meta_pb2.IntOrString) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return f"expected a whole number or a name, got {describe(node)}"
    if isinstance(value, int):
        if not -(2**31) <= value < 2**31:
            return f"{value} is out of range for a 32-bit integer"
        msg.int_val = value
        return None
    problem = bad_text(value)
    if problem is None:
        msg.str_val = value
    return problem


def _quantity(node: yaml.ScalarNode, value: Any, msg: meta_pb2.Quantity) -> str | None:
    if isinstance(value, bool) or value is None:
        return f"expected a quantity such as 500m, 1 or 3Gi, got {describe(node)}"
    text = str(node.value).strip() if node.style is None else str(value).strip()  # as written
    try:
        parse_quantity(text)
    except QuantityError as exc:
        return str(exc)
    problem = bad_text(text)
    if problem is None:
        msg.value = text
    return problem


def _timestamp(node: yaml.ScalarNode, value: Any, msg: Timestamp) -> str | None:
    if not isinstance(value, str):
        return f"expected an RFC 3339 time such as 2024-01-31T12:00:00Z, got {describe(node)}"
    try:
        msg.FromJsonString(value.strip())
        return None
    except (ValueError, TypeError, OverflowError):
        pass
    try:  # what yaml.safe_load gives for a time: "2024-01-31 12:00:00+00:00"
        when = datetime.fromisoformat(value.strip())
        if when.tzinfo is None:
            raise ValueError("no time zone")
        msg.FromDatetime(when)
    except (ValueError, TypeError, OverflowError):
        return f'"{value}" is not an RFC 3339 time; write e.g. 2024-01-31T12:00:00Z (with a time zone)'
    return None
