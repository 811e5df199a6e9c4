"""The kind registry reads every kind from the descriptors."""

import pytest

from pinnace.api import apps_pb2, pod_pb2
from pinnace.common import kinds


def test_every_kind_has_api_version_and_plural() -> None:
    assert len(kinds.KINDS) >= 12
    for k in kinds.KINDS:
        assert k.api_version and k.plural, k


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("po", "pod"),
        ("pods", "pod"),
        ("Pod", "pod"),
        ("svc", "service"),
        ("pvc", "persistent_volume_claim"),
        ("pv", "persistent_volume"),
        ("deploy", "deployment"),
        ("rs", "replica_set"),
        ("ep", "endpoints"),
        ("no", "node"),
        ("ns", "namespace"),
        ("sc", "storage_class"),
        ("ev", "event"),
        ("lease", "lease"),
    ],
)
def test_lookup_names(name: str, key: str) -> None:
    assert kinds.lookup(name).key == key


def test_unknown_kind_lists_known() -> None:
    with pytest.raises(kinds.UnknownKind, match=r"known kinds: .*Deployment"):
        kinds.lookup("API-Sla-typo")


def test_wrap_unwrap_roundtrip() -> None:
    d = apps_pb2.Deployment()
    d.metadata.name = "web"
    d.metadata.namespace = "default"
    obj = kinds.wrap(d)
    assert kinds.kind_of(obj).kind == "Deployment"
    assert kinds.unwrap(obj) == d
    assert kinds.cache_key(obj) == "default/web"
    assert kinds.object_key(kinds.of_message(pod_pb2.Pod), "ns", "p") == "/registry/pods/ns/p"
