"""Small value types the SDK returns: ListResult and WatchEvent, generic over the kind message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from google.protobuf.message import Message

M = TypeVar("M", bound=Message)

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
BOOKMARK = "BOOKMARK"


@dataclass
class ListResult(Generic[M]):
    """One List answer: the items (typed), the revision it was served at, and the continue token."""

    items: list[M]
    revision: int
    continue_token: str = ""
    remaining_item_count: int = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class WatchEvent(Generic[M]):
    """One watch event. ``object`` is the kind message (for BOOKMARK an empty one); for MODIFIED and
    DELETED ``prev_object`` is the state before the event when the store sends it."""

    type: str
    object: M
    revision: int
    prev_object: M | None = field(default=None)
