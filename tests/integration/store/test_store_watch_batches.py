"""WatchBatches over a real store process: the same events as Watch (order, completeness, selectors,
bookmarks, compaction, resume), with everything ready at once in one message."""

from __future__ import annotations

import threading

import grpc
import pytest

from pinnace.api import object_pb2, store_pb2, store_pb2_grpc

WatchEvent = store_pb2.WatchEvent


def make_ns(stub: store_pb2_grpc.StoreStub, name: str) -> int:
    """Create a namespace; the store's revision after it."""
    o = object_pb2.Object()
    o.namespace.metadata.name = name
    return int(stub.Create(store_pb2.CreateRequest(object=o)).namespace.metadata.resource_version)


def pod(name: str, ns: str, labels: dict[str, str] | None = None) -> object_pb2.Object:
    o = object_pb2.Object()
    o.pod.metadata.name = name
    o.pod.metadata.namespace = ns
    o.pod.metadata.labels.update(labels or {})
    c = o.pod.spec.containers.add()
    c.name = "c"
    c.image = "x:1"
    return o


def create(stub: store_pb2_grpc.StoreStub, name: str, ns: str, labels: dict[str, str] | None = None) -> int:
    return int(stub.Create(store_pb2.CreateRequest(object=pod(name, ns, labels))).pod.metadata.resource_version)


def relabel(stub: store_pb2_grpc.StoreStub, name: str, ns: str, **labels: str) -> int:
    o = stub.Get(store_pb2.GetRequest(kind="pod", namespace=ns, name=name))
    o.pod.metadata.labels.update(labels)
    return int(stub.Update(store_pb2.UpdateRequest(object=o)).pod.metadata.resource_version)


def collect(
    stub: store_pb2_grpc.StoreStub, req: store_pb2.WatchRequest, n: int, timeout: float = 20
) -> list[store_pb2.WatchEventBatch]:
    """Batches until they hold n events in all."""
    out: list[store_pb2.WatchEventBatch] = []
    call = stub.WatchBatches(req, timeout=timeout)
    total = 0
    for batch in call:
        out.append(batch)
        total += len(batch.events)
        if total >= n:
            call.cancel()
            break
    return out


def events(batches: list[store_pb2.WatchEventBatch]) -> list[WatchEvent]:
    return [e for b in batches for e in b.events]


def test_replay_then_live_in_order_without_gaps(stub: store_pb2_grpc.StoreStub) -> None:
    start = make_ns(stub, "b1")
    before = [create(stub, f"h{i}", "b1") for i in range(50)]
    later: list[int] = []

    def writer() -> None:
        later.extend(create(stub, f"l{i}", "b1") for i in range(200))

    t = threading.Thread(target=writer)
    t.start()
    batches = collect(stub, store_pb2.WatchRequest(kind="pod", namespace="b1", from_revision=start), 250)
    t.join()
    evs = events(batches)
    assert [e.revision for e in evs] == before + later
    assert all(e.type == WatchEvent.ADDED for e in evs)
    assert [int(e.object.pod.metadata.resource_version) for e in evs] == before + later
    assert len(batches[0].events) >= 50  # the replayed history arrives in one message


def test_label_selector_enter_leave(stub: store_pb2_grpc.StoreStub) -> None:
    start = make_ns(stub, "b2")
    create(stub, "a", "b2", {"app": "other"})
    entered = relabel(stub, "a", "b2", app="web")
    modified = relabel(stub, "a", "b2", tier="x")
    left = relabel(stub, "a", "b2", app="gone")
    relabel(stub, "a", "b2", tier="y")
    req = store_pb2.WatchRequest(kind="pod", namespace="b2", from_revision=start, label_selector="app=web")
    evs = events(collect(stub, req, 3))
    assert [(e.type, e.revision) for e in evs] == [
        (WatchEvent.ADDED, entered),
        (WatchEvent.MODIFIED, modified),
        (WatchEvent.DELETED, left),
    ]
    assert {e.object.pod.metadata.name for e in evs} == {"a"}
    assert evs[2].object.pod.metadata.labels["app"] == "web"  # the last state that matched
    call = stub.Watch(req, timeout=20)
    assert [ev for _, ev in zip(range(3), call, strict=False)] == evs  # exactly what Watch sends
    call.cancel()


def test_compacted_out_of_range(stub: store_pb2_grpc.StoreStub) -> None:
    make_ns(stub, "b3")
    first = create(stub, "a", "b3")
    create(stub, "b", "b3")
    last = create(stub, "c", "b3")
    stub.Compact(store_pb2.CompactRequest(revision=last - 1))
    with pytest.raises(grpc.RpcError) as ei:
        collect(stub, store_pb2.WatchRequest(kind="pod", namespace="b3", from_revision=first), 1)
    assert ei.value.code() == grpc.StatusCode.OUT_OF_RANGE
    evs = events(collect(stub, store_pb2.WatchRequest(kind="pod", namespace="b3", from_revision=last - 1), 1))
    assert [e.object.pod.metadata.name for e in evs] == ["c"]


def test_resume_from_last_seen_revision(stub: store_pb2_grpc.StoreStub) -> None:
    start = make_ns(stub, "b4")
    revs = [create(stub, f"p{i}", "b4") for i in range(20)]
    first = events(collect(stub, store_pb2.WatchRequest(kind="pod", namespace="b4", from_revision=start), 1))
    seen = [e.revision for e in first]
    resumed = collect(stub, store_pb2.WatchRequest(kind="pod", namespace="b4", from_revision=seen[7]), 12)
    assert seen[:8] + [e.revision for e in events(resumed)] == revs


def test_bookmarks(stub: store_pb2_grpc.StoreStub) -> None:
    rev = make_ns(stub, "b5")
    batches = collect(stub, store_pb2.WatchRequest(kind="node", bookmarks=True), 2, timeout=10)
    assert all(len(b.events) == 1 and b.events[0].type == WatchEvent.BOOKMARK for b in batches)
    assert batches[0].events[0].revision >= rev


def test_watch_and_batches_agree(stub: store_pb2_grpc.StoreStub) -> None:
    start = make_ns(stub, "b6")
    for i in range(10):
        create(stub, f"p{i}", "b6")
    stub.Delete(store_pb2.DeleteRequest(kind="pod", namespace="b6", name="p3"))
    req = store_pb2.WatchRequest(kind="pod", namespace="b6", from_revision=start)
    call = stub.Watch(req, timeout=20)
    single = [ev for _, ev in zip(range(11), call, strict=False)]
    call.cancel()
    assert events(collect(stub, req, 11)) == single
