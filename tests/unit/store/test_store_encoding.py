"""Unit tests of command/result encodings, hand-built wire bytes and continue tokens."""

from __future__ import annotations

import pytest

from pinnace.api import object_pb2, store_pb2
from pinnace.common import kinds
from services.store import encoding as enc
from services.store.listing import decode_continue, encode_continue, kind_range
from services.store.registry.errors import StoreError


def test_txn_roundtrip() -> None:
    txn = enc.Txn(
        [enc.Compare("/a", enc.CMP_NOT_EXISTS), enc.Compare("/b", enc.CMP_MOD, 2**40)],
        [enc.Op(enc.OP_PUT, "/a/ü", b"\x00" * 70000), enc.Op(enc.OP_DELETE, "/c")],
    )
    assert enc.decode_txn(enc.encode_txn(txn)) == txn
    assert enc.decode_compact(enc.encode_compact(123)) == 123


def test_txn_roundtrip_random_and_truncated_commands_fail() -> None:
    import random

    rnd = random.Random(7)
    for _ in range(300):
        txn = enc.Txn(
            [
                enc.Compare(f"/k/{rnd.random()}", rnd.choice((enc.CMP_EXISTS, enc.CMP_MOD)), rnd.randrange(2**62))
                for _ in range(rnd.randrange(3))
            ],
            [
                enc.Op(enc.OP_PUT, f"/k/{i}", rnd.randbytes(rnd.randrange(300)))
                if rnd.random() < 0.7
                else enc.Op(enc.OP_DELETE, f"/k/{i}")
                for i in range(rnd.randrange(4))
            ],
        )
        data = enc.encode_txn(txn)
        assert enc.decode_txn(data) == txn
        if txn.ops and txn.ops[-1].kind == enc.OP_PUT and txn.ops[-1].value:
            with pytest.raises(Exception):  # noqa: B017 - struct.error or ValueError, both caught by apply
                enc.decode_txn(data[:-1])


def test_results() -> None:
    assert enc.decode_result(enc.result_ok(7)) == enc.Result(True, revision=7)
    r = enc.decode_result(enc.result_failed(2, 9))
    assert not r.ok and r.failed_index == 2 and r.actual_mod_revision == 9
    assert enc.decode_result(enc.result_error("boom")).error == "boom"


@pytest.mark.parametrize("key", [k.key for k in kinds.KINDS])
def test_rv_suffix_every_kind(key: str) -> None:
    o = object_pb2.Object()
    kinds.meta(getattr(o, key)).name = "n"
    kinds.meta(getattr(o, key)).resource_version = "5"
    for rev in (1, 1234567, 2**63 - 1):
        out = object_pb2.Object.FromString(enc.with_rv(o.SerializeToString(), rev))
        assert out.WhichOneof("kind") == key
        assert kinds.meta(out).resource_version == str(rev) and kinds.meta(out).name == "n"


def test_watch_and_list_bytes_parse() -> None:
    o = object_pb2.Object()
    o.pod.metadata.name = "p"
    b = o.SerializeToString()
    ev = store_pb2.WatchEvent.FromString(enc.watch_event_bytes(enc.MODIFIED, 300, b, b))
    assert ev.type == store_pb2.WatchEvent.MODIFIED and ev.revision == 300 and ev.object == o and ev.prev_object == o
    bm = store_pb2.WatchEvent.FromString(enc.watch_event_bytes(enc.BOOKMARK, 5, None, None))
    assert bm.type == store_pb2.WatchEvent.BOOKMARK and not bm.HasField("object")
    lr = store_pb2.ListResponse.FromString(enc.list_response_bytes([b, b], 99, "tok", 3))
    assert len(lr.items) == 2 and lr.revision == 99 and lr.continue_token == "tok" and lr.remaining_item_count == 3


def test_varint() -> None:
    for n in (0, 1, 127, 128, 300, 2**35):
        msg = store_pb2.CompactRequest(revision=n).SerializeToString()
        assert msg == (b"\x08" + enc.varint(n) if n else b"")


def test_continue_tokens() -> None:
    tok = encode_continue(42, "/registry/pods/default/x")
    assert decode_continue(tok) == (42, "/registry/pods/default/x")
    for bad in ("", "###", encode_continue(42, "k")[:-3] + "zz"):
        with pytest.raises(StoreError):
            decode_continue(bad)


def test_kind_range() -> None:
    pods = kinds.by_key("pod")
    assert kind_range(pods, "ns") == ("/registry/pods/ns/", "/registry/pods/ns0")
    assert kind_range(pods) == ("/registry/pods/", "/registry/pods0")
    s, e = kind_range(pods, "ns", "x")
    assert s <= "/registry/pods/ns/x" < e and not (s <= "/registry/pods/ns/xy" < e)
