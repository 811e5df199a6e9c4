"""Store over a real process: list pagination at one revision, selectors, watch replay/live/compaction/bookmarks."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from pinnace.api import object_pb2, store_pb2, store_pb2_grpc

WatchEvent = store_pb2.WatchEvent


def make_ns(stub: store_pb2_grpc.StoreStub, name: str) -> None:
    o = object_pb2.Object()
    o.namespace.metadata.name = name
    stub.Create(store_pb2.CreateRequest(object=o))


def cm(name: str, ns: str, labels: dict[str, str] | None = None, node: str = "") -> object_pb2.Object:
    o = object_pb2.Object()
    o.pod.metadata.name = name
    o.pod.metadata.namespace = ns
    o.pod.metadata.labels.update(labels or {})
    o.pod.spec.node_name = node
    c = o.pod.spec.containers.add()
    c.name = "c"
    c.image = "x:1"
    return o


def test_list_pagination_one_revision(stub: store_pb2_grpc.StoreStub) -> None:
    make_ns(stub, "page")
    for i in range(25):
        stub.Create(store_pb2.CreateRequest(object=cm(f"p{i:02d}", "page")))
    first = stub.List(store_pb2.ListRequest(kind="pod", namespace="page", limit=10))
    assert len(first.items) == 10 and first.continue_token and first.remaining_item_count == 15
    # writes after the first page are not visible in later pages (same revision)
    stub.Create(store_pb2.CreateRequest(object=cm("p99", "page")))
    stub.Delete(store_pb2.DeleteRequest(kind="pod", namespace="page", name="p20"))
    names = [i.pod.metadata.name for i in first.items]
    tok = first.continue_token
    while tok:
        r = stub.List(store_pb2.ListRequest(kind="pod", namespace="page", limit=10, continue_token=tok))
        assert r.revision == first.revision
        names += [i.pod.metadata.name for i in r.items]
        tok = r.continue_token
    assert names == [f"p{i:02d}" for i in range(25)]
    now = stub.List(store_pb2.ListRequest(kind="pod", namespace="page"))
    assert "p99" in {i.pod.metadata.name for i in now.items} and len(now.items) == 25


def test_list_selectors(stub: store_pb2_grpc.StoreStub) -> None:
    make_ns(stub, "sel")
    stub.Create(store_pb2.CreateRequest(object=cm("a", "sel", {"app": "web"}, node="n1")))
    stub.Create(store_pb2.CreateRequest(object=cm("b", "sel", {"app": "db"}, node="n2")))
    stub.Create(store_pb2.CreateRequest(object=cm("c", "sel", {"app": "web", "tier": "x"})))

    def names(**kw: str) -> list[str]:
        req = store_pb2.ListRequest(kind="pod", **kw)  # type: ignore[arg-type]
        return sorted(i.pod.metadata.name for i in stub.List(req).items)

    assert names(namespace="sel", label_selector="app=web") == ["a", "c"]
    assert names(namespace="sel", label_selector="app in (web,db),!tier") == ["a", "b"]
    assert names(namespace="sel", field_selector="spec.nodeName=n2") == ["b"]
    assert names(namespace="sel", field_selector="spec.nodeName!=n2,metadata.name!=c") == ["a"]
    assert names(field_selector="metadata.namespace=sel", label_selector="app=db") == ["b"]
    paged = stub.List(store_pb2.ListRequest(kind="pod", namespace="sel", label_selector="app=web", limit=1))
    assert [i.pod.metadata.name for i in paged.items] == ["a"] and paged.continue_token
    with pytest.raises(grpc.RpcError) as ei:
        stub.List(store_pb2.ListRequest(kind="pod", field_selector="spec.bogus=1"))
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def collect(
    stub: store_pb2_grpc.StoreStub, req: store_pb2.WatchRequest, n: int, timeout: float = 10
) -> list[WatchEvent]:
    out: list[WatchEvent] = []
    call = stub.Watch(req, timeout=timeout)
    for ev in call:
        out.append(ev)
        if len(out) >= n:
            call.cancel()
            break
    return out


def test_watch_replay_then_live(stub: store_pb2_grpc.StoreStub) -> None:
    make_ns(stub, "w1")
    start = stub.List(store_pb2.ListRequest(kind="pod", namespace="w1")).revision
    a = stub.Create(store_pb2.CreateRequest(object=cm("a", "w1")))
    upd = object_pb2.Object()
    upd.CopyFrom(a)
    upd.pod.metadata.labels["v"] = "2"
    stub.Update(store_pb2.UpdateRequest(object=upd))

    def later() -> None:
        time.sleep(0.3)
        stub.Delete(store_pb2.DeleteRequest(kind="pod", namespace="w1", name="a"))
        stub.Create(store_pb2.CreateRequest(object=cm("b", "w1")))

    t = threading.Thread(target=later)
    t.start()
    evs = collect(stub, store_pb2.WatchRequest(kind="pod", namespace="w1", from_revision=start), 4)
    t.join()
    assert [e.type for e in evs] == [WatchEvent.ADDED, WatchEvent.MODIFIED, WatchEvent.DELETED, WatchEvent.ADDED]
    revs = [e.revision for e in evs]
    assert revs == sorted(revs) and len(set(revs)) == 4
    assert evs[1].prev_object.pod.metadata.labels.get("v") is None
    assert evs[2].object.pod.metadata.name == "a"
    assert [int(e.object.pod.metadata.resource_version) for e in evs] == revs


def test_watch_label_selector_enter_leave(stub: store_pb2_grpc.StoreStub) -> None:
    make_ns(stub, "w2")
    start = stub.List(store_pb2.ListRequest(kind="pod", namespace="w2")).revision
    a = stub.Create(store_pb2.CreateRequest(object=cm("a", "w2", {"app": "other"})))
    upd = object_pb2.Object()
    upd.CopyFrom(a)
    upd.pod.metadata.labels["app"] = "web"
    upd.pod.metadata.resource_version = ""
    stub.Update(store_pb2.UpdateRequest(object=upd))
    upd.pod.metadata.labels["app"] = "gone"
    stub.Update(store_pb2.UpdateRequest(object=upd))
    evs = collect(
        stub, store_pb2.WatchRequest(kind="pod", namespace="w2", from_revision=start, label_selector="app=web"), 2
    )
    assert [e.type for e in evs] == [WatchEvent.ADDED, WatchEvent.DELETED]
    # leaving the selection: the last state the watcher could see, at the event's revision
    left = evs[1].object.pod.metadata
    assert left.labels["app"] == "web" and int(left.resource_version) == evs[1].revision


def test_watch_compacted_out_of_range(stub: store_pb2_grpc.StoreStub) -> None:
    make_ns(stub, "w3")
    start = stub.Create(store_pb2.CreateRequest(object=cm("a", "w3"))).pod.metadata.resource_version
    stub.Create(store_pb2.CreateRequest(object=cm("b", "w3")))
    rev = stub.Create(store_pb2.CreateRequest(object=cm("c", "w3"))).pod.metadata.resource_version
    resp = stub.Compact(store_pb2.CompactRequest(revision=int(rev) - 1))
    assert resp.compact_revision == int(rev) - 1
    with pytest.raises(grpc.RpcError) as ei:
        collect(stub, store_pb2.WatchRequest(kind="pod", from_revision=int(start)), 1)
    assert ei.value.code() == grpc.StatusCode.OUT_OF_RANGE
    evs = collect(stub, store_pb2.WatchRequest(kind="pod", namespace="w3", from_revision=int(rev) - 1), 1)
    assert evs[0].object.pod.metadata.name == "c"
    st = stub.Status(store_pb2.StatusRequest())
    assert st.compact_revision == int(rev) - 1


def test_watch_bookmarks(stub: store_pb2_grpc.StoreStub) -> None:
    evs = collect(stub, store_pb2.WatchRequest(kind="node", bookmarks=True), 2, timeout=5)
    assert all(e.type == WatchEvent.BOOKMARK for e in evs)
    assert evs[0].revision > 0


def test_watch_single_name(stub: store_pb2_grpc.StoreStub) -> None:
    make_ns(stub, "w4")
    start = stub.List(store_pb2.ListRequest(kind="pod", namespace="w4")).revision
    stub.Create(store_pb2.CreateRequest(object=cm("a", "w4")))
    stub.Create(store_pb2.CreateRequest(object=cm("ab", "w4")))
    stub.Delete(store_pb2.DeleteRequest(kind="pod", namespace="w4", name="a"))
    evs = collect(stub, store_pb2.WatchRequest(kind="pod", namespace="w4", name="a", from_revision=start), 2)
    assert [(e.type, e.object.pod.metadata.name) for e in evs] == [(WatchEvent.ADDED, "a"), (WatchEvent.DELETED, "a")]


def test_watch_from_now_sees_only_new(stub: store_pb2_grpc.StoreStub) -> None:
    make_ns(stub, "w5")
    stub.Create(store_pb2.CreateRequest(object=cm("old", "w5")))
    got: list[WatchEvent] = []

    def run() -> None:
        got.extend(collect(stub, store_pb2.WatchRequest(kind="pod", namespace="w5"), 1))

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)
    stub.Create(store_pb2.CreateRequest(object=cm("new", "w5")))
    t.join(10)
    assert [e.object.pod.metadata.name for e in got] == ["new"]
