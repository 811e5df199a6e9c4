"""List helpers: key ranges, continue tokens and label/field filtering."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

from pinnace.api.object_pb2 import Object
from pinnace.common import kinds
from pinnace.common.selectors import Selector, parse_label_selector
from services.store.mvcc import REGISTRY_PREFIX, prefix_end
from services.store.registry.errors import invalid
from services.store.registry.fields import FieldSelector


def kind_range(info: kinds.KindInfo, namespace: str = "", name: str = "") -> tuple[str, str]:
    """[start, end) of the keys of a kind, optionally in one namespace or for one name."""
    if name:
        key = kinds.object_key(info, namespace, name)
        return key, key + "\x00"
    if info.namespaced and namespace:
        prefix = f"{REGISTRY_PREFIX}{info.plural}/{namespace}/"
    else:
        prefix = f"{REGISTRY_PREFIX}{info.plural}/"
    return prefix, prefix_end(prefix)


def encode_continue(revision: int, last_key: str) -> str:
    raw = json.dumps([revision, last_key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_continue(token: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        rev, key = json.loads(raw)
        if not isinstance(rev, int) or not isinstance(key, str) or rev <= 0:
            raise ValueError("bad token")
        return rev, key
    except Exception:
        raise invalid("continue", "invalid continue token: restart the list without it") from None


Matcher = Callable[[Object], bool]


def make_matcher(info: kinds.KindInfo, label_selector: str, field_selector: str) -> Matcher | None:
    """A predicate over Objects for the selectors, or None when both are empty."""
    try:
        labels: Selector = parse_label_selector(label_selector)
    except ValueError as e:
        raise invalid("labelSelector", str(e)) from None
    try:
        fields = FieldSelector(field_selector)
        fields.check(info.message())
    except ValueError as e:
        raise invalid("fieldSelector", str(e)) from None
    if labels.empty and fields.empty:
        return None

    def match(obj: Object) -> bool:
        inner = kinds.unwrap(obj)
        if not labels.empty and not labels.matches(kinds.meta(inner).labels):
            return False
        return fields.empty or fields.matches(inner)

    return match
