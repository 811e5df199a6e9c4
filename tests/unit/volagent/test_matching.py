"""Pure binder rules: matching, the available index, pinned nodes; mountinfo unescaping; CLI claim parsing."""

from __future__ import annotations

import pytest

from pinnace.api import meta_pb2, storage_pb2
from services.volagent import mounts
from services.volagent.binder import matching as mt
from services.volagent.binder.available import AvailableIndex
from tests.unit.volagent.binder_cases import make_pv, make_pvc, pin


def test_mismatch_reasons() -> None:
    pv = make_pv("a", "1Gi", "/x", cls="fast", modes=("ReadWriteOnce", "ReadOnlyMany"), labels={"tier": "gold"})
    claim = make_pvc("c", "1Gi", cls="fast")
    assert mt.mismatch(claim, pv, "fast") == ""
    assert "storage class" in mt.mismatch(claim, pv, "slow")
    assert "capacity" in mt.mismatch(make_pvc("c", "2Gi", cls="fast"), pv, "fast")
    assert "access modes" in mt.mismatch(make_pvc("c", "1Gi", cls="fast", modes=("ReadWriteMany",)), pv, "fast")
    ok = make_pvc("c", "500Mi", cls="fast", modes=("ReadOnlyMany",))
    ok.spec.selector.match_labels["tier"] = "gold"
    assert mt.mismatch(ok, pv, "fast") == ""
    ok.spec.selector.match_labels["tier"] = "silver"
    assert "selector" in mt.mismatch(ok, pv, "fast")
    block = make_pvc("c", "1Gi", cls="fast")
    block.spec.volume_mode = "Block"
    assert "volume mode" in mt.mismatch(block, pv, "fast")


def test_best_match_smallest_then_name() -> None:
    pvs = [make_pv(n, s, "/x") for n, s in (("b", "2Gi"), ("a", "2Gi"), ("c", "1Gi"), ("d", "500Mi"))]
    assert mt.best_match(make_pvc("c", "600Mi"), pvs, "").metadata.name == "c"  # type: ignore[union-attr]
    assert mt.best_match(make_pvc("c", "1.5Gi"), pvs, "").metadata.name == "a"  # type: ignore[union-attr]
    assert mt.best_match(make_pvc("c", "3Gi"), pvs, "") is None
    assert mt.best_match(make_pvc("c", "1.5Gi"), pvs, "", exclude=frozenset({"a"})).metadata.name == "b"  # type: ignore[union-attr]


def test_node_affinity_and_pinned_node() -> None:
    pv = pin(make_pv("p", "1Gi", "/x"), "node-2")
    assert mt.pinned_node(pv) == "node-2"
    assert mt.node_matches(pv, {"kubernetes.io/hostname": "node-2"})
    assert not mt.node_matches(pv, {"kubernetes.io/hostname": "node-1"})
    assert mt.node_matches(pv, None)  # no node chosen yet
    assert mt.pinned_node(make_pv("q", "1Gi", "/x")) is None


def test_default_class_and_claim_class() -> None:
    sc = storage_pb2.StorageClass(metadata=meta_pb2.ObjectMeta(name="std"))
    sc.metadata.annotations[mt.DEFAULT_CLASS_ANNOTATION] = "true"
    other = storage_pb2.StorageClass(metadata=meta_pb2.ObjectMeta(name="other"))
    assert mt.default_class([other, sc]) == "std"
    assert mt.claim_class(make_pvc("c", "1Gi", cls=None), "std") == "std"
    assert mt.claim_class(make_pvc("c", "1Gi", cls=""), "std") == ""


def test_available_index() -> None:
    idx = AvailableIndex()
    for n, s in (("a", "3Gi"), ("b", "1Gi"), ("c", "2Gi")):
        assert idx.track(make_pv(n, s, "/x"))
    assert list(idx.candidates("", 1024**3 + 1)) == ["c", "a"]
    bound = make_pv("c", "2Gi", "/x")
    bound.spec.claim_ref.name = "someone"
    assert not idx.track(bound)
    assert "c" not in idx and list(idx.candidates("", 0)) == ["b", "a"]
    idx.remove("a")
    idx.remove("a")
    assert len(idx) == 1 and list(idx.candidates("other", 0)) == []


def test_mountinfo_unescape() -> None:
    assert mounts._unescape(r"/mnt/with\040space") == "/mnt/with space"
    assert mounts._unescape(r"/a\134b") == "/a\\b"
    assert mounts._unescape("/plain") == "/plain"


def test_rebind_claim_argument() -> None:
    from pinnace.cli.context import CLIError
    from pinnace.cli.pv import parse_claim

    assert parse_claim("apps/data", "default") == ("apps", "data")
    assert parse_claim("data", "prod") == ("prod", "data")
    with pytest.raises(CLIError):
        parse_claim("a/b/c", "default")
