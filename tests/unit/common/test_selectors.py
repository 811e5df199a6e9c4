"""Label and field selectors in Kubernetes syntax."""

import pytest

from pinnace.api import meta_pb2
from pinnace.common.selectors import (
    SelectorError,
    from_label_selector,
    parse_field_selector,
    parse_label_selector,
)


def test_label_selector_terms() -> None:
    s = parse_label_selector("app=web,tier!=db,env in (a,b),!legacy,release")
    assert s.matches({"app": "web", "env": "a", "release": "1"})
    assert not s.matches({"app": "web", "env": "c", "release": "1"})
    assert not s.matches({"app": "web", "env": "a", "release": "1", "legacy": ""})
    assert not s.matches({"app": "web", "env": "a"})
    assert parse_label_selector("").matches({})


def test_bad_selector() -> None:
    with pytest.raises(SelectorError, match="cannot parse"):
        parse_label_selector("=web")


def test_label_selector_message() -> None:
    msg = meta_pb2.LabelSelector(
        match_labels={"app": "x"},
        match_expressions=[meta_pb2.LabelSelectorRequirement(key="tier", operator="NotIn", values=["db"])],
    )
    sel = from_label_selector(msg)
    assert sel.matches({"app": "x", "tier": "web"})
    assert not sel.matches({"app": "x", "tier": "db"})


def test_field_selector() -> None:
    reqs = parse_field_selector("spec.nodeName=n1,status.phase!=Running")
    assert [(r.path, r.op, r.value) for r in reqs] == [("spec.nodeName", "=", "n1"), ("status.phase", "!=", "Running")]
