"""Property test: the MVCC store agrees with a tiny in-memory model, however entries are batched.

Random transactions (compares + puts/deletes) are applied in random batch splits; results,
revisions, the latest state, every historical state (List at a revision) and the event history
must match the model exactly.
"""

from __future__ import annotations

import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinnace.api.object_pb2 import Object
from services.store import encoding as enc
from services.store.mvcc import MVCCStore

KEYS = [f"/registry/pods/ns/k{i}" for i in range(5)]


def value(n: int) -> bytes:
    o = Object()
    o.pod.metadata.name = f"v{n}"
    return o.SerializeToString()


compare = st.one_of(
    st.builds(lambda k: enc.Compare(k, enc.CMP_NOT_EXISTS), st.sampled_from(KEYS)),
    st.builds(lambda k: enc.Compare(k, enc.CMP_EXISTS), st.sampled_from(KEYS)),
    st.builds(lambda k, r: enc.Compare(k, enc.CMP_MOD, r), st.sampled_from(KEYS), st.integers(0, 8)),
)
op = st.one_of(
    st.builds(lambda k, n: enc.Op(enc.OP_PUT, k, value(n)), st.sampled_from(KEYS), st.integers(0, 99)),
    st.builds(lambda k: enc.Op(enc.OP_DELETE, k), st.sampled_from(KEYS)),
)
txn = st.builds(
    enc.Txn,
    st.lists(compare, max_size=2),
    st.lists(op, min_size=1, max_size=1),  # one /registry/ op per txn, as the server guarantees
)


class Model:
    def __init__(self) -> None:
        self.rev = 0
        self.kv: dict[str, tuple[bytes, int]] = {}  # key -> (value without rv, mod_revision)
        self.snapshots: dict[int, dict[str, bytes]] = {0: {}}
        self.events: list[tuple[int, int, str]] = []

    def apply(self, t: enc.Txn) -> enc.Result:
        for i, c in enumerate(t.compares):
            actual = self.kv[c.key][1] if c.key in self.kv else 0
            ok = (
                actual == 0
                if c.kind == enc.CMP_NOT_EXISTS
                else actual != 0
                if c.kind == enc.CMP_EXISTS
                else actual == c.revision
            )
            if not ok:
                return enc.Result(False, failed_index=i, actual_mod_revision=actual)
        self.rev += 1
        for o in t.ops:
            if o.kind == enc.OP_PUT:
                self.events.append((self.rev, enc.MODIFIED if o.key in self.kv else enc.ADDED, o.key))
                self.kv[o.key] = (o.value, self.rev)
            elif o.key in self.kv:
                self.events.append((self.rev, enc.DELETED, o.key))
                del self.kv[o.key]
        self.snapshots[self.rev] = {k: v for k, (v, _) in self.kv.items()}
        return enc.Result(True, revision=self.rev)


def names(rows: list[tuple[str, bytes]]) -> dict[str, str]:
    return {k: Object.FromString(v).pod.metadata.name for k, v in rows}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(txn, min_size=1, max_size=40), st.lists(st.integers(1, 8), min_size=1, max_size=40))
def test_store_matches_model(txns: list[enc.Txn], splits: list[int]) -> None:
    model = Model()
    expected = [model.apply(t) for t in txns]
    with tempfile.TemporaryDirectory() as d:
        store = MVCCStore(d, history_window=0)
        got: list[enc.Result] = []
        i = index = 0
        for size in splits * (len(txns) + 1):
            if i >= len(txns):
                break
            chunk = txns[i : i + size]
            entries = [(index + j + 1, enc.encode_txn(t)) for j, t in enumerate(chunk)]
            got += [enc.decode_result(r) for r in store.apply_batch(entries)]
            i += len(chunk)
            index += len(chunk)
        assert got == expected
        assert store.revision() == model.rev and store.applied_index() == len(txns)
        for rev, snap in model.snapshots.items():
            rows, served, _ = store.range("/registry/", "/registry0", revision=rev)
            if rev == 0:
                continue  # revision 0 means "latest" in the API
            assert served == rev
            want = {k: Object.FromString(v).pod.metadata.name for k, v in snap.items()}
            assert names(rows) == want
            paged: list[tuple[str, bytes]] = []
            start, more = "/registry/", True
            while more:  # pages of 2 at that revision, as a continue token would walk them
                page, _, more = store.range(start, "/registry0", limit=2, revision=rev)
                paged += page
                if page:
                    start = page[-1][0] + "\x00"
            assert names(paged) == want and [k for k, _ in paged] == sorted(want)
        hist = store.history(0, "/registry/", "/registry0", limit=10_000)
        assert [(e.revision, e.type, e.key) for e in hist] == model.events
        for k, (v, mod) in model.kv.items():
            kv = store.get(k)
            assert kv is not None and kv.mod_revision == mod
            assert Object.FromString(kv.value).pod.metadata.resource_version == str(mod)
            assert Object.FromString(kv.value).pod.metadata.name == Object.FromString(v).pod.metadata.name
        store.close()
