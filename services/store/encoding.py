"""Compact binary encodings: replicated commands and their results, plus hand-built protobuf wire bytes.

Commands are what the replicator orders; apply decodes them. A command is a small transaction
(etcd's Txn without else-branch): compares on keys, then puts and deletes, all at one new revision.

Stored object values already carry their resource_version: apply appends a tiny serialized
`Object{<kind>{metadata{resource_version}}}` to the proposed bytes (protobuf merges concatenated
messages, last scalar wins), so reads serve stored bytes without parsing or re-serializing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import NamedTuple

# ---- command kinds
CMD_TXN = 0x54  # 'T'
CMD_COMPACT = 0x43  # 'C'
CMD_NOOP = 0x4E  # 'N'
CMD_MULTI = 0x4D  # 'M': several txn commands in one replicated entry, applied in order

# ---- compare kinds
CMP_NOT_EXISTS = 0x4E  # 'N': key must be absent
CMP_EXISTS = 0x45  # 'E': key must exist
CMP_MOD = 0x4D  # 'M': key's mod_revision must equal `revision` (0 = absent)

# ---- op kinds
OP_PUT = 0x50  # 'P'
OP_DELETE = 0x44  # 'D'

# ---- result kinds
RES_OK = 0x53  # 'S' + revision
RES_FAILED = 0x46  # 'F' + compare index + actual mod_revision
RES_COMPACTED = 0x63  # 'c' + compact revision
RES_ERROR = 0x45  # 'E' + utf-8 message
RES_MULTI = 0x6D  # 'm' + the results of a CMD_MULTI's commands, in order

_H = struct.Struct(">H")
_I = struct.Struct(">I")
_Q = struct.Struct(">q")
_HQ = struct.Struct(">Hq")


class Compare(NamedTuple):  # a NamedTuple: apply decodes one per key per write, cheaply
    key: str
    kind: int
    revision: int = 0


class Op(NamedTuple):
    kind: int
    key: str
    value: bytes = b""


@dataclass
class Txn:
    compares: list[Compare] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)


def _s(text: str) -> bytes:
    b = text.encode()
    return _H.pack(len(b)) + b


def encode_txn(txn: Txn) -> bytes:
    parts = [bytes((CMD_TXN,)), _H.pack(len(txn.compares))]
    for c in txn.compares:
        parts += [bytes((c.kind,)), _s(c.key), _Q.pack(c.revision)]
    parts.append(_H.pack(len(txn.ops)))
    for o in txn.ops:
        parts += [bytes((o.kind,)), _s(o.key)]
        if o.kind == OP_PUT:
            parts += [_I.pack(len(o.value)), o.value]
    return b"".join(parts)


def encode_compact(revision: int) -> bytes:
    return bytes((CMD_COMPACT,)) + _Q.pack(revision)


def encode_noop() -> bytes:
    return bytes((CMD_NOOP,))


def _frame(kind: int, parts: list[bytes]) -> bytes:
    out = [bytes((kind,)), _H.pack(len(parts))]
    for part in parts:
        out += [_I.pack(len(part)), part]
    return b"".join(out)


def _unframe(kind: int, data: bytes) -> list[bytes]:
    if not data or data[0] != kind:
        raise ValueError(f"not a {chr(kind)!r} frame")
    parts: list[bytes] = []
    try:
        (n,) = _H.unpack_from(data, 1)
        pos = 3
        for _ in range(n):
            (size,) = _I.unpack_from(data, pos)
            pos += 4 + size
            if pos > len(data):
                raise ValueError("truncated frame")
            parts.append(data[pos - size : pos])
    except struct.error:
        raise ValueError("truncated frame") from None
    if pos != len(data):
        raise ValueError("trailing bytes after frame")
    return parts


def encode_multi(commands: list[bytes]) -> bytes:
    """Several txn commands as one (at most 65,535): one raft entry, each its own revision."""
    return _frame(CMD_MULTI, commands)


def decode_multi(data: bytes) -> list[bytes]:
    return _unframe(CMD_MULTI, data)


def result_multi(results: list[bytes]) -> bytes:
    return _frame(RES_MULTI, results)


def decode_multi_result(data: bytes) -> list[bytes]:
    return _unframe(RES_MULTI, data)


def decode_txn(data: bytes) -> Txn:
    """The Txn of an encoded command (the inverse of encode_txn; runs on every replica per write)."""
    if not data or data[0] != CMD_TXN:
        raise ValueError("not a txn command")
    u16, i64, u32 = _H.unpack_from, _Q.unpack_from, _I.unpack_from
    (n,) = u16(data, 1)
    pos = 3
    compares: list[Compare] = []
    for _ in range(n):
        kind = data[pos]
        (size,) = u16(data, pos + 1)
        pos += 3 + size
        compares.append(Compare(data[pos - size : pos].decode(), kind, i64(data, pos)[0]))
        pos += 8
    (n,) = u16(data, pos)
    pos += 2
    ops: list[Op] = []
    for _ in range(n):
        kind = data[pos]
        (size,) = u16(data, pos + 1)
        pos += 3 + size
        key = data[pos - size : pos].decode()
        value = b""
        if kind == OP_PUT:
            (vsize,) = u32(data, pos)
            pos += 4 + vsize
            value = bytes(data[pos - vsize : pos])
            if len(value) != vsize:
                raise ValueError("truncated txn value")
        ops.append(Op(kind, key, value))
    return Txn(compares, ops)


def decode_compact(data: bytes) -> int:
    (v,) = _Q.unpack_from(data, 1)
    return int(v)


# ---- results


def result_ok(revision: int) -> bytes:
    return bytes((RES_OK,)) + _Q.pack(revision)


def result_failed(index: int, actual_mod_revision: int) -> bytes:
    return bytes((RES_FAILED,)) + _HQ.pack(index, actual_mod_revision)


def result_compacted(revision: int) -> bytes:
    return bytes((RES_COMPACTED,)) + _Q.pack(revision)


def result_error(message: str) -> bytes:
    return bytes((RES_ERROR,)) + message.encode()


@dataclass(frozen=True)
class Result:
    ok: bool
    revision: int = 0  # new revision (ok) or compact revision
    failed_index: int = -1
    actual_mod_revision: int = 0
    error: str = ""


def decode_result(data: bytes) -> Result:
    kind = data[0]
    if kind in (RES_OK, RES_COMPACTED):
        return Result(True, revision=_Q.unpack_from(data, 1)[0])
    if kind == RES_FAILED:
        idx, actual = _HQ.unpack_from(data, 1)
        return Result(False, failed_index=idx, actual_mod_revision=actual)
    return Result(False, error=data[1:].decode(errors="replace"))


# ---- protobuf wire helpers


def varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def ld(tag: int, payload: bytes) -> bytes:
    """A length-delimited field (tag already shifted: field << 3 | 2)."""
    return varint(tag) + varint(len(payload)) + payload


def kind_field_number(value: bytes) -> int:
    """The Object oneof field number of a serialized Object (its first tag)."""
    if not value:
        return 0
    tag = value[0]
    if tag & 0x80:  # two-byte tag; oneof numbers stay small, but be correct
        tag = (tag & 0x7F) | (value[1] << 7)
    return tag >> 3


def rv_suffix(field_number: int, revision: int) -> bytes:
    """Serialized Object{<kind>{metadata{resource_version: str(revision)}}} for appending."""
    rv = str(revision).encode()
    n = len(rv)  # at most 20 digits: every length below fits one varint byte
    return varint((field_number << 3) | 2) + bytes((n + 4, 0x0A, n + 2, 0x2A, n)) + rv


def with_rv(value: bytes, revision: int) -> bytes:
    fn = kind_field_number(value)
    return value + rv_suffix(fn, revision) if fn else value


# WatchEvent types (proto enum values)
ADDED = 1
MODIFIED = 2
DELETED = 3
BOOKMARK = 4


def watch_event_bytes(etype: int, revision: int, obj: bytes | None, prev: bytes | None) -> bytes:
    parts = [b"\x08", varint(etype)]
    if obj is not None:
        parts.append(ld(0x12, obj))
    parts += [b"\x18", varint(revision)]
    if prev is not None:
        parts.append(ld(0x22, prev))
    return b"".join(parts)


def list_response_bytes(items: list[bytes], revision: int, continue_token: str, remaining: int) -> bytes:
    parts: list[bytes] = []
    append = parts.append
    headers: dict[int, bytes] = {}
    for it in items:  # header and payload side by side: the payload is copied once, by join
        n = len(it)
        h = headers.get(n)
        if h is None:
            h = headers[n] = b"\x0a" + varint(n)
        append(h)
        append(it)
    parts += [b"\x10", varint(revision)]
    if continue_token:
        parts.append(ld(0x1A, continue_token.encode()))
    if remaining:
        parts += [b"\x20", varint(remaining)]
    return b"".join(parts)


def batch_result_ok(value: bytes) -> bytes:
    """One BatchResponse.results entry (field 1) holding a stored object."""
    return ld(0x0A, ld(0x0A, value))


def batch_result_error(code: int, message: str) -> bytes:
    """One BatchResponse.results entry for a failed op: code (field 2) and message (field 3)."""
    return ld(0x0A, b"\x10" + varint(code) + ld(0x1A, message.encode()))
