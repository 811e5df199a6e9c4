"""Unit tests of the MVCC state machine: txn semantics, revisions, history, compaction, snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.store import encoding as enc
from services.store.mvcc import Compacted, Event, MVCCStore

OBJ = b"\x1a\x05\x0a\x03\x0a\x01x"  # Object{pod{metadata{name:"x"}}}: field 3 (pod)


def put(key: str, value: bytes = OBJ, cmp: enc.Compare | None = None) -> bytes:
    return enc.encode_txn(enc.Txn([cmp] if cmp else [], [enc.Op(enc.OP_PUT, key, value)]))


def delete(key: str) -> bytes:
    return enc.encode_txn(enc.Txn([], [enc.Op(enc.OP_DELETE, key)]))


class Applier:
    def __init__(self, store: MVCCStore) -> None:
        self.store = store
        self.index = store.applied_index()

    def __call__(self, *cmds: bytes) -> list[enc.Result]:
        entries = []
        for c in cmds:
            self.index += 1
            entries.append((self.index, c))
        return [enc.decode_result(r) for r in self.store.apply_batch(entries)]


@pytest.fixture
def store(tmp_path: Path) -> MVCCStore:
    return MVCCStore(str(tmp_path), history_window=0)


def test_put_get_versions_and_rv_suffix(store: MVCCStore) -> None:
    apply = Applier(store)
    k = "/registry/pods/default/x"
    (r1,) = apply(put(k))
    assert r1.ok and r1.revision == 1
    kv = store.get(k)
    assert kv is not None and (kv.create_revision, kv.mod_revision, kv.version) == (1, 1, 1)
    from pinnace.api.object_pb2 import Object

    assert Object.FromString(kv.value).pod.metadata.resource_version == "1"
    apply(put(k))
    kv = store.get(k)
    assert kv is not None and (kv.create_revision, kv.mod_revision, kv.version) == (1, 2, 2)
    assert Object.FromString(kv.value).pod.metadata.resource_version == "2"
    assert store.revision() == 2 and store.applied_index() == 2


def test_compares(store: MVCCStore) -> None:
    apply = Applier(store)
    k = "/registry/pods/default/x"
    r = apply(
        put(k, cmp=enc.Compare(k, enc.CMP_NOT_EXISTS)),
        put(k, cmp=enc.Compare(k, enc.CMP_NOT_EXISTS)),
        put(k, cmp=enc.Compare(k, enc.CMP_MOD, 1)),
        put(k, cmp=enc.Compare(k, enc.CMP_MOD, 1)),
        put("/registry/pods/default/y", cmp=enc.Compare("/registry/namespaces/nope", enc.CMP_EXISTS)),
    )
    assert [x.ok for x in r] == [True, False, True, False, False]
    assert r[1].actual_mod_revision == 1 and r[3].actual_mod_revision == 2
    assert store.revision() == 2  # failed txns do not consume revisions


def test_one_revision_per_txn_and_history(store: MVCCStore) -> None:
    apply = Applier(store)
    txn = enc.Txn(
        [], [enc.Op(enc.OP_PUT, "/registry/services/default/s", OBJ), enc.Op(enc.OP_PUT, "/ranges/x/1", b"s")]
    )
    (r,) = apply(enc.encode_txn(txn))
    assert r.revision == 1
    apply(delete("/registry/services/default/s"), delete("/registry/services/default/missing"))
    evs = store.history(0, "/registry/", "/registry0")
    assert [(e.revision, e.type) for e in evs] == [(1, enc.ADDED), (2, enc.DELETED)]
    assert evs[1].prev is not None and evs[1].value is None
    assert store.revision() == 3  # the delete of a missing key still took a revision
    all_evs = store.history(0, "/", "0")
    assert {e.key for e in all_evs} == {"/registry/services/default/s", "/ranges/x/1"}


def test_listeners_get_events_in_order(store: MVCCStore) -> None:
    got: list[Event] = []
    store.listeners.append(got.extend)
    apply = Applier(store)
    apply(put("/registry/pods/a/1"), put("/registry/pods/a/2"), delete("/registry/pods/a/1"))
    assert [(e.revision, e.type, e.key) for e in got] == [
        (1, enc.ADDED, "/registry/pods/a/1"),
        (2, enc.ADDED, "/registry/pods/a/2"),
        (3, enc.DELETED, "/registry/pods/a/1"),
    ]


def test_range_at_old_revision(store: MVCCStore) -> None:
    apply = Applier(store)
    apply(put("/registry/pods/a/1"), put("/registry/pods/a/2"))  # rev 1, 2
    apply(put("/registry/pods/a/1"), delete("/registry/pods/a/2"), put("/registry/pods/a/3"))  # 3, 4, 5
    rows, rev, more = store.range("/registry/pods/", "/registry/pods0", revision=2)
    assert rev == 2 and [k for k, _ in rows] == ["/registry/pods/a/1", "/registry/pods/a/2"] and not more
    rows, rev, _ = store.range("/registry/pods/", "/registry/pods0")
    assert rev == 5 and [k for k, _ in rows] == ["/registry/pods/a/1", "/registry/pods/a/3"]
    rows, _, more = store.range("/registry/pods/", "/registry/pods0", limit=1, revision=2)
    assert len(rows) == 1 and more


def test_compaction(store: MVCCStore) -> None:
    apply = Applier(store)
    apply(*(put(f"/registry/pods/a/{i}") for i in range(5)))
    (r,) = apply(enc.encode_compact(3))
    assert r.revision == 3 and store.compact_revision() == 3
    with pytest.raises(Compacted):
        store.history(2, "/registry/", "/registry0")
    assert [e.revision for e in store.history(3, "/registry/", "/registry0")] == [4, 5]
    with pytest.raises(Compacted):
        store.range("/registry/", "/registry0", revision=2)


def test_auto_compaction_by_window(tmp_path: Path) -> None:
    store = MVCCStore(str(tmp_path), history_window=10)
    apply = Applier(store)
    for i in range(30):
        apply(put(f"/registry/pods/a/{i}"))
    assert store.compact_revision() >= 30 - 11 - 1
    assert len(store.history(store.compact_revision(), "/", "0")) <= 12


def test_restart_resumes_and_skips_applied(tmp_path: Path) -> None:
    s1 = MVCCStore(str(tmp_path))
    apply = Applier(s1)
    apply(put("/registry/pods/a/1"), put("/registry/pods/a/2"))
    s1.close()
    s2 = MVCCStore(str(tmp_path))
    assert s2.applied_index() == 2 and s2.revision() == 2
    res = s2.apply_batch([(2, put("/registry/pods/a/9")), (3, put("/registry/pods/a/3"))])
    assert enc.decode_result(res[0]).error and enc.decode_result(res[1]).revision == 3
    assert s2.get("/registry/pods/a/9") is None


def test_snapshot_restore(tmp_path: Path) -> None:
    a = MVCCStore(str(tmp_path / "a"))
    Applier(a)(put("/registry/pods/a/1"), put("/registry/pods/a/2"))
    snap = str(tmp_path / "snap.db")
    a.pin_snapshot()(snap)
    b = MVCCStore(str(tmp_path / "b"))
    Applier(b)(put("/registry/pods/zzz/1"))
    resets: list[int] = []
    b.reset_listeners.append(lambda: resets.append(1))
    b.get("/registry/pods/zzz/1")  # open a reader before the restore
    b.restore(snap)
    assert resets == [1]
    assert b.revision() == 2 and b.applied_index() == 2
    assert b.get("/registry/pods/zzz/1") is None and b.get("/registry/pods/a/2") is not None


def test_pinned_snapshot_is_the_state_at_the_pin_while_applies_go_on(tmp_path: Path) -> None:
    import threading

    a = MVCCStore(str(tmp_path / "a"))
    apply = Applier(a)
    apply(*(put(f"/registry/pods/a/{i}") for i in range(200)))
    copy = a.pin_snapshot()
    # the pin does not hold up applies on another thread (raft applies on its loop thread)
    writer = threading.Thread(target=lambda: apply(*(put(f"/registry/pods/b/{i}") for i in range(50))))
    writer.start()
    writer.join(10)
    assert not writer.is_alive() and a.applied_index() == 250
    snap = str(tmp_path / "snap.db")
    copy(snap)  # copied after those applies, yet it is the state at the pin
    b = MVCCStore(str(tmp_path / "b"))
    b.restore(snap)
    assert b.applied_index() == 200 and b.revision() == 200
    assert b.get("/registry/pods/a/199") is not None and b.get("/registry/pods/b/0") is None
    assert a.get("/registry/pods/b/49") is not None


def test_malformed_command_does_not_wedge(store: MVCCStore) -> None:
    res = store.apply_batch([(1, b"T\x00"), (2, b"?"), (3, put("/registry/pods/a/1"))])
    assert enc.decode_result(res[0]).error and enc.decode_result(res[1]).error
    assert enc.decode_result(res[2]).ok


def test_age_compactor_picks_old_revisions(store: MVCCStore) -> None:
    from services.store.compaction import AgeCompactor

    apply = Applier(store)
    comp = AgeCompactor(store, replicator=None, max_age=10)  # type: ignore[arg-type]
    apply(put("/registry/pods/a/1"))
    assert comp.due(0.0) == 0  # sample (0, 1)
    apply(put("/registry/pods/a/2"))
    assert comp.due(5.0) == 0  # sample (5, 2)
    assert comp.due(10.0) == 1  # (0, 1) is now 10 s old
    assert comp.due(11.0) == 0
    assert comp.due(15.0) == 2


def test_set_durable(store: MVCCStore) -> None:
    store.set_durable(False)
    Applier(store)(put("/registry/pods/a/1"))
    store.set_durable(True)
    assert store.revision() == 1
