"""Fuzz every Store RPC of a real store process with random and mutated inputs (hypothesis).

Random messages are built from the protobuf descriptors (any field of any kind, any depth);
mutated ones are valid requests with flipped, dropped or inserted bytes, sent as raw bytes.
Every call must answer within its deadline with OK or a clear gRPC error (never UNKNOWN, which
is an unhandled exception in a handler, or INTERNAL); afterwards the
store still serves, and every object it holds decodes and lists. Bounded to ~30 s by default
(PINNACE_FUZZ_EXAMPLES scales the number of examples per RPC).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pinnace.api import object_pb2, store_pb2, store_pb2_grpc
from tests.support.store import StoreCluster, start_store

EXAMPLES = int(os.environ.get("PINNACE_FUZZ_EXAMPLES", "400"))
DEADLINE = 5.0
KINDS = [f.name for f in object_pb2.Object.DESCRIPTOR.oneofs_by_name["kind"].fields]
CLEAR = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAVAILABLE,
}
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
    database=None,
)
failures: list[str] = []


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreCluster]:
    c = start_store(tmp_path_factory.mktemp("fuzz"), max_object_bytes=262144)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def channel(store: StoreCluster) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(store.endpoints[0]) as ch:
        yield ch


def check_call(fn: Any, req: Any, what: str) -> Any:
    """Call; OK or a clear error are fine, anything else is recorded and fails the test."""
    try:
        return fn(req, timeout=DEADLINE)
    except grpc.RpcError as e:
        code, details = e.code(), e.details() or ""
        if code in CLEAR and details:
            return None
        failures.append(f"{what}: {code.name} {details!r} for {str(req)[:300]!r}")
        raise AssertionError(failures[-1]) from None


# ---------------------------------------------------------------------------- random messages

TEXT = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"[a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?", fullmatch=True),
    st.sampled_from(["", "default", "kube-system", "n1", "a=b", "app in (x,y)", "!x", "metadata.name=x", "500m"]),
)


@st.composite
def message(draw: st.DrawFn, desc: Descriptor, depth: int = 0) -> dict[str, Any]:
    """A random assignment of some fields of desc (returned as a dict for fill())."""
    out: dict[str, Any] = {}
    fields = list(desc.fields)
    chosen = draw(st.lists(st.sampled_from(fields), max_size=min(6, len(fields)), unique=True)) if fields else []
    for f in chosen:
        out[f.name] = draw(_value(f, depth))
    return out


def _scalar(f: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = f.type
    if t == FieldDescriptor.TYPE_STRING:
        return TEXT
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=40)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    if t == FieldDescriptor.TYPE_ENUM:
        assert f.enum_type is not None
        return st.sampled_from([v.number for v in f.enum_type.values])
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(-3, 70000))
    return st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-3, 100))


def _value(f: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if f.type == FieldDescriptor.TYPE_MESSAGE:
        md = f.message_type
        assert md is not None
        if md.GetOptions().map_entry:
            return st.dictionaries(TEXT, _scalar(md.fields_by_name["value"]) if md.fields_by_name["value"].type
                                   != FieldDescriptor.TYPE_MESSAGE else st.just(None), max_size=3)  # fmt: skip
        if depth >= 4:
            return st.just({})
        one = message(md, depth + 1)
        return st.lists(one, max_size=2) if f.is_repeated else one
    return st.lists(_scalar(f), max_size=3) if f.is_repeated else _scalar(f)


def fill(msg: Message, values: dict[str, Any]) -> None:
    for name, v in values.items():
        f = msg.DESCRIPTOR.fields_by_name[name]
        try:
            if f.type == FieldDescriptor.TYPE_MESSAGE:
                assert f.message_type is not None
                if f.message_type.GetOptions().map_entry:
                    m = getattr(msg, name)
                    for k, val in v.items():
                        if val is None:
                            m.get_or_create(k)
                        else:
                            m[k] = val
                elif f.is_repeated:
                    for item in v:
                        fill(getattr(msg, name).add(), item)
                else:
                    sub = getattr(msg, name)
                    sub.SetInParent()
                    fill(sub, v)
            elif f.is_repeated:
                getattr(msg, name).extend(v)
            else:
                setattr(msg, name, v)
        except (ValueError, TypeError):
            pass  # e.g. a float for an int field, out of range: skip that field


@st.composite
def objects(draw: st.DrawFn) -> object_pb2.Object:
    kind = draw(st.sampled_from(KINDS))
    obj = object_pb2.Object()
    sub = getattr(obj, kind)
    sub.SetInParent()
    fill(sub, draw(message(sub.DESCRIPTOR)))
    # often a plausible name/namespace, so requests get past the first checks and deeper
    if draw(st.booleans()):
        sub.metadata.name = draw(st.sampled_from(["fz-a", "fz-b", "fz-c", "default", "n1"]))
        if draw(st.booleans()):
            sub.metadata.namespace = draw(st.sampled_from(["default", "kube-system", "nope", ""]))
    return obj


def mutate(data: bytes, rnd: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(3)
        if op == 0 and b:
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        elif op == 1 and b:
            i = rnd.randrange(len(b))
            del b[i : i + rnd.randint(1, 8)]
        else:
            i = rnd.randrange(len(b) + 1)
            b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
    return bytes(b)


# ---------------------------------------------------------------------------- the RPCs


@FUZZ
@given(obj=objects(), dry=st.booleans(), verb=st.sampled_from(["Create", "Update", "UpdateStatus"]))
def test_fuzz_writes(channel: grpc.Channel, obj: object_pb2.Object, dry: bool, verb: str) -> None:
    s = store_pb2_grpc.StoreStub(channel)
    req: Message = store_pb2.CreateRequest(object=obj, dry_run=dry)
    if verb != "Create":
        req = store_pb2.UpdateRequest(object=obj, dry_run=dry)
    check_call(getattr(s, verb), req, verb)


@FUZZ
@given(
    kind=st.one_of(st.sampled_from(KINDS), TEXT),
    ns=TEXT,
    name=TEXT,
    labels=TEXT,
    fields=TEXT,
    limit=st.integers(-5, 2**63 - 1),
    cont=st.one_of(st.just(""), TEXT, st.binary(max_size=30).map(lambda b: b.hex())),
    rev=st.integers(-(2**63), 2**63 - 1),
    flag=st.booleans(),
)
# The largest limit once reached SQLite as limit + 1 and overflowed its integers (CI, 2026-11-26),
# at the latest revision and at an older one.
@example(kind="namespace", ns="", name="", labels="", fields="", limit=2**63 - 1, cont="", rev=0, flag=False)
@example(kind="namespace", ns="", name="", labels="", fields="", limit=2**63 - 1, cont="", rev=1, flag=True)
def test_fuzz_reads_and_deletes(
    channel: grpc.Channel,
    kind: str,
    ns: str,
    name: str,
    labels: str,
    fields: str,
    limit: int,
    cont: str,
    rev: int,
    flag: bool,
) -> None:
    s = store_pb2_grpc.StoreStub(channel)
    check_call(s.Get, store_pb2.GetRequest(kind=kind, namespace=ns, name=name, serializable=flag), "Get")
    lr = store_pb2.ListRequest(
        kind=kind,
        namespace=ns,
        label_selector=labels,
        field_selector=fields,
        limit=limit,
        continue_token=cont,
        revision=rev,
        serializable=flag,
    )
    check_call(s.List, lr, "List")
    dr = store_pb2.DeleteRequest(kind=kind, namespace=ns, name=name + "-fz" if flag else name, dry_run=flag)
    dr.preconditions.resource_version = labels[:5]
    check_call(s.Delete, dr, "Delete")
    check_call(s.Status, store_pb2.StatusRequest(), "Status")
    if rev < 0 or rev > 10**12:  # compact only to absurd revisions (keeps history for the other tests)
        check_call(s.Compact, store_pb2.CompactRequest(revision=rev), "Compact")


@FUZZ
@given(
    kind=st.one_of(st.sampled_from(KINDS), TEXT, st.just("")),
    ns=TEXT,
    name=TEXT,
    labels=TEXT,
    fields=TEXT,
    rev=st.integers(-(2**63), 2**63 - 1),
    bookmarks=st.booleans(),
)
def test_fuzz_watch(
    channel: grpc.Channel, kind: str, ns: str, name: str, labels: str, fields: str, rev: int, bookmarks: bool
) -> None:
    s = store_pb2_grpc.StoreStub(channel)
    req = store_pb2.WatchRequest(
        kind=kind, namespace=ns, name=name, label_selector=labels, field_selector=fields, from_revision=rev
    )
    req.bookmarks = bookmarks
    call = s.Watch(req, timeout=0.2)
    try:
        for _ in call:
            pass
    except grpc.RpcError as e:
        code, details = e.code(), e.details() or ""
        if code == grpc.StatusCode.DEADLINE_EXCEEDED or code == grpc.StatusCode.CANCELLED:
            return  # a healthy stream that simply had nothing (more) to say
        if not (code in CLEAR and details):
            failures.append(f"Watch: {code.name} {details!r} for {req}")
            raise AssertionError(failures[-1]) from None
    finally:
        call.cancel()


RAW_METHODS = ["Create", "Get", "List", "Update", "UpdateStatus", "Delete", "Status", "Compact"]


@FUZZ
@given(obj=objects(), seed=st.integers(0, 2**32), method=st.sampled_from(RAW_METHODS), junk=st.booleans())
def test_fuzz_mutated_bytes(channel: grpc.Channel, obj: object_pb2.Object, seed: int, method: str, junk: bool) -> None:
    rnd = random.Random(seed)
    valid = store_pb2.CreateRequest(object=obj).SerializeToString()
    data = bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 64))) if junk else mutate(valid, rnd)
    if method == "Compact":
        try:
            if store_pb2.CompactRequest.FromString(data).revision > 0:
                return  # a real compaction: not what this test is about
        except DecodeError:
            pass
    raw = channel.unary_unary(f"/pinnace.v1.Store/{method}")  # bytes in, bytes out
    check_call(raw, data, f"{method}(raw)")


def test_store_still_serves_and_state_is_sound(store: StoreCluster, channel: grpc.Channel) -> None:
    """Runs last in this module: the process is alive, answers, and everything it holds decodes."""
    assert store.alive(0), store.tail(0)
    assert not failures, failures[:5]
    s = store_pb2_grpc.StoreStub(channel)
    assert s.Get(store_pb2.GetRequest(kind="namespace", name="default"), timeout=DEADLINE).namespace.metadata.name
    total = 0
    for kind in KINDS:
        r = s.List(store_pb2.ListRequest(kind=kind), timeout=DEADLINE)
        for item in r.items:
            assert item.WhichOneof("kind") == kind
            total += 1
    ok = s.Create(store_pb2.CreateRequest(object=objects_example()), timeout=DEADLINE)
    assert ok.pod.metadata.resource_version
    log = store.log_path(0).read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]


def objects_example() -> object_pb2.Object:
    o = object_pb2.Object()
    o.pod.metadata.name = "after-fuzz"
    o.pod.metadata.namespace = "default"
    c = o.pod.spec.containers.add()
    c.name = "app"
    c.image = "busybox:1.36"
    return o
