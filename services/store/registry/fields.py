"""Field selectors over objects: dotted Kubernetes (camelCase) or proto (snake_case) paths."""

from __future__ import annotations

from functools import cache

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from pinnace.common.selectors import FieldRequirement, SelectorError, parse_field_selector


@cache
def _fields(desc: Descriptor) -> dict[str, FieldDescriptor]:
    out: dict[str, FieldDescriptor] = {}
    for f in desc.fields:
        out[f.name] = f
        out[f.json_name] = f
        out[f.json_name.lower()] = f
    return out


def field_value(msg: Message, path: str) -> str:
    """The value at a dotted path as a string ("" when unset or not a scalar)."""
    cur: object = msg
    for part in path.split("."):
        if not isinstance(cur, Message):
            return ""
        f = _fields(cur.DESCRIPTOR).get(part) or _fields(cur.DESCRIPTOR).get(part.lower())
        if f is None:
            raise SelectorError(f"field selector: unknown field {path!r}")
        if f.is_repeated:
            return ""
        cur = getattr(cur, f.name)
    if isinstance(cur, Message):
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


class FieldSelector:
    """A parsed field selector; matches kind messages (Pod, Service, ...)."""

    def __init__(self, text: str) -> None:
        self.requirements: tuple[FieldRequirement, ...] = parse_field_selector(text)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, msg: Message) -> bool:
        for r in self.requirements:
            v = field_value(msg, r.path)
            if (v == r.value) != (r.op == "="):
                return False
        return True

    def check(self, msg: Message) -> None:
        """Raise SelectorError when a path does not exist on this kind."""
        for r in self.requirements:
            field_value(msg, r.path)
