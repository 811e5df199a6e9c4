"""The kind registry, read from the API descriptors: one entry per field of the `Object` oneof.

Everything generic over kinds (store, SDK, CLI, manifests) goes through here, so adding a
kind to proto/ is all it takes to make it known everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf.message import Message

from pinnace.api import meta_pb2, object_pb2, options_pb2

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class KindInfo:
    """What is known about one kind."""

    key: str  # the oneof field name, e.g. "persistent_volume_claim"
    kind: str  # the Kubernetes kind, e.g. "PersistentVolumeClaim"
    api_version: str  # e.g. "v1", "apps/v1"
    plural: str  # e.g. "persistentvolumeclaims"
    short_names: tuple[str, ...]
    aliases: tuple[str, ...]
    namespaced: bool
    message: type[Message]

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]


def _load() -> list[KindInfo]:
    kinds: list[KindInfo] = []
    for field in object_pb2.Object.DESCRIPTOR.oneofs_by_name["kind"].fields:
        desc = field.message_type
        assert desc is not None
        opts = desc.GetOptions()
        short = opts.Extensions[options_pb2.short_names]
        aliases = opts.Extensions[options_pb2.kind_aliases]
        cls = getattr(object_pb2.Object(), field.name).__class__
        kinds.append(
            KindInfo(
                key=field.name,
                kind=desc.name,
                api_version=opts.Extensions[options_pb2.api_version],
                plural=opts.Extensions[options_pb2.plural],
                short_names=tuple(s for s in short.split(",") if s),
                aliases=tuple(a for a in aliases.split(",") if a),
                namespaced=opts.Extensions[options_pb2.namespaced],
                message=cls,
            )
        )
    return kinds


KINDS: list[KindInfo] = _load()
_BY_KEY = {k.key: k for k in KINDS}
_BY_MESSAGE = {k.message.DESCRIPTOR.full_name: k for k in KINDS}
_BY_NAME: dict[str, KindInfo] = {}
for _k in KINDS:
    for _name in (_k.key, _k.kind, _k.plural, *_k.short_names, *_k.aliases, _k.kind.lower()):
        _BY_NAME.setdefault(_name.lower(), _k)
    # "Pods" style plurals of the kind name, e.g. "pods", "endpoints".
    _BY_NAME.setdefault(_k.kind.lower() + "s", _k)


class UnknownKind(LookupError):
    """Raised for a kind name nobody knows; the message lists the known kinds."""


def known_kinds_text() -> str:
    return ", ".join(sorted(k.kind for k in KINDS))


def lookup(name: str) -> KindInfo:
    """Find a kind by oneof key, Kind, plural, short name or alias (case-insensitive)."""
    info = _BY_NAME.get(name.strip().lower())
    if info is None:
        raise UnknownKind(f"unknown kind {name!r}; known kinds: {known_kinds_text()}")
    return info


def by_key(key: str) -> KindInfo:
    info = _BY_KEY.get(key)
    if info is None:
        raise UnknownKind(f"unknown kind key {key!r}; known: {', '.join(sorted(_BY_KEY))}")
    return info


def of_message(msg: Message | type[Message]) -> KindInfo:
    """The kind of a message instance or class (Pod, Service, ...)."""
    info = _BY_MESSAGE.get(msg.DESCRIPTOR.full_name)
    if info is None:
        raise UnknownKind(f"{msg.DESCRIPTOR.full_name} is not a top-level kind")
    return info


def wrap(msg: Message) -> object_pb2.Object:
    """Put a kind message into the Object envelope (copies)."""
    if isinstance(msg, object_pb2.Object):
        return msg
    obj = object_pb2.Object()
    getattr(obj, of_message(msg).key).CopyFrom(msg)
    return obj


def unwrap(obj: object_pb2.Object) -> Message:
    """The kind message inside an Object (a live reference, not a copy)."""
    key = obj.WhichOneof("kind")
    if key is None:
        raise UnknownKind("empty Object: no kind set")
    msg: Message = getattr(obj, key)
    return msg


def kind_of(obj: object_pb2.Object) -> KindInfo:
    key = obj.WhichOneof("kind")
    if key is None:
        raise UnknownKind("empty Object: no kind set")
    return _BY_KEY[key]


def meta(msg: Message | object_pb2.Object) -> meta_pb2.ObjectMeta:
    """The ObjectMeta of an Object or of a kind message (live reference)."""
    inner = unwrap(msg) if isinstance(msg, object_pb2.Object) else msg
    m: meta_pb2.ObjectMeta = getattr(inner, "metadata")  # noqa: B009 - Message has no typed metadata
    return m


def object_key(info: KindInfo, namespace: str, name: str) -> str:
    """The store key: /registry/<plural>/<namespace>/<name> (cluster-scoped: no namespace part)."""
    if info.namespaced:
        return f"/registry/{info.plural}/{namespace}/{name}"
    return f"/registry/{info.plural}/{name}"


def cache_key(msg: Any) -> str:
    """ "namespace/name" (or "name" for cluster-scoped objects), as client-go's MetaNamespaceKeyFunc."""
    m = meta(msg)
    return f"{m.namespace}/{m.name}" if m.namespace else m.name
