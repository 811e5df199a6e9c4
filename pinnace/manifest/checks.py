"""Small shared helpers for semantic validation: a problem list, enums, ports, quantities, selectors."""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Iterable, Mapping

from google.protobuf.message import Message

from pinnace.api import meta_pb2
from pinnace.common.quantity import QuantityError, parse_quantity
from pinnace.manifest import names
from pinnace.manifest.problems import FieldProblem


class Problems:
    """Collects FieldProblems while a validator walks an object."""

    def __init__(self) -> None:
        self.items: list[FieldProblem] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(FieldProblem(path, message))

    def check(self, path: str, error: str | None) -> None:
        if error is not None:
            self.add(path, error)

    def required(self, path: str, value: object, what: str = "") -> bool:
        if value in ("", 0, None) or (isinstance(value, Iterable) and not isinstance(value, str) and not value):
            self.add(path, f"required{': ' + what if what else ''}")
            return False
        return True

    def enum(self, path: str, value: str, allowed: Iterable[str], *, empty_ok: bool = True) -> None:
        options = list(allowed)
        if value == "" and empty_ok:
            return
        if value not in options:
            near = [o for o in options if o.lower() == value.lower()]
            near = near or difflib.get_close_matches(value, options, n=1, cutoff=0.7)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            hint += names.lookalike_note(value)
            self.add(path, f"unsupported value {value!r}: must be one of {', '.join(options)}{hint}")

    def port(self, path: str, value: int, *, zero_ok: bool = False) -> None:
        if zero_ok and value == 0:
            return
        if not 1 <= value <= 65535:
            self.add(path, f"{value} is not a valid port number: must be between 1 and 65535")

    def at_least(self, path: str, value: int, low: int) -> None:
        if value < low:
            self.add(path, f"must be {low} or more, not {value}")

    def quantity(self, path: str, text: str, *, non_negative: bool = True) -> None:
        try:
            value = parse_quantity(text)
        except QuantityError as exc:
            self.add(path, str(exc))
            return
        if non_negative and value < 0:
            self.add(path, f"{text!r} must not be negative")

    def labels(self, path: str, labels: Mapping[str, str], *, values: bool = True) -> None:
        for key, value in labels.items():
            kpath = f"{path}[{key}]"
            self.check(kpath, names.qualified_name(key))
            if values:
                self.check(kpath, names.label_value(value))

    def ip(self, path: str, text: str) -> None:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            self.add(path, f"{text!r} is not a valid IP address")

    def cidr(self, path: str, text: str) -> None:
        try:
            ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            self.add(path, f"{text!r} is not a valid CIDR (e.g. 10.244.1.0/24): {exc}")

    def label_selector(self, path: str, sel: meta_pb2.LabelSelector) -> None:
        self.labels(f"{path}.matchLabels", sel.match_labels)
        for i, req in enumerate(sel.match_expressions):
            rpath = f"{path}.matchExpressions[{i}]"
            self.required(f"{rpath}.key", req.key)
            self.check(f"{rpath}.key", names.qualified_name(req.key) if req.key else None)
            self.enum(f"{rpath}.operator", req.operator, ("In", "NotIn", "Exists", "DoesNotExist"), empty_ok=False)
            if req.operator in ("In", "NotIn") and not req.values:
                self.add(f"{rpath}.values", f"must be non-empty when operator is {req.operator}")
            if req.operator in ("Exists", "DoesNotExist") and req.values:
                self.add(f"{rpath}.values", f"must be empty when operator is {req.operator}")


def has(msg: Message, field: str) -> bool:
    """HasField with a field name computed at run time."""
    return msg.HasField(field)
