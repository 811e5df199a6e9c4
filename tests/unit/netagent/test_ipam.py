"""IPAM: persistent, idempotent, never twice, gateway reserved, round-robin reuse."""

from __future__ import annotations

import pytest

from services.netagent.ipam import IPAM, IPAMError


def test_allocate_idempotent_and_persistent(tmp_path):
    path = str(tmp_path / "ipam.json")
    ipam = IPAM(path, "10.244.1.0/24")
    assert ipam.gateway == "10.244.1.1"
    a = ipam.allocate("uid-a", "default", "a")
    assert a.ip == "10.244.1.2"
    assert ipam.allocate("uid-a").ip == a.ip
    b = ipam.allocate("uid-b")
    assert b.ip == "10.244.1.3"
    again = IPAM(path, "10.244.1.0/24")
    assert again.lookup("uid-a") is not None and again.lookup("uid-a").ip == a.ip  # type: ignore[union-attr]
    assert again.allocate("uid-c").ip == "10.244.1.4"


def test_release_and_no_immediate_reuse(tmp_path):
    ipam = IPAM(str(tmp_path / "ipam.json"), "10.244.1.0/24")
    a = ipam.allocate("a")
    ipam.allocate("b")
    assert ipam.release("a") == a.ip
    assert ipam.release("a") is None
    assert ipam.allocate("c").ip == "10.244.1.4"


def test_exhaustion_and_never_twice(tmp_path):
    ipam = IPAM(str(tmp_path / "ipam.json"), "10.244.1.0/29")  # .2 .. .6
    ips = {ipam.allocate(f"u{i}").ip for i in range(5)}
    assert len(ips) == 5
    assert "10.244.1.1" not in ips and "10.244.1.7" not in ips and "10.244.1.0" not in ips
    with pytest.raises(IPAMError):
        ipam.allocate("one-too-many")
    ipam.release("u2")
    assert ipam.allocate("next").ip not in ips - {"10.244.1.4"}


def test_cidr_change_resets(tmp_path):
    path = str(tmp_path / "ipam.json")
    IPAM(path, "10.244.1.0/24").allocate("a")
    ipam = IPAM(path, "10.244.2.0/24")
    assert ipam.allocate("a").ip == "10.244.2.2"
