"""Authorization rules of the store, by identity."""

from pinnace.api import object_pb2
from services.store.authz import Request, check


def pod_on(node: str) -> object_pb2.Object:
    o = object_pb2.Object()
    o.pod.spec.node_name = node
    return o


def test_admin_and_reads() -> None:
    assert check(Request("admin", "delete", "node", name="n1")) is None
    assert check(Request("node:n1", "list", "pod")) is None


def test_node_only_changes_itself() -> None:
    assert check(Request("node:n1", "update_status", "node", name="n1")) is None
    msg = check(Request("node:n1", "update_status", "node", name="n2"))
    assert msg and "only change its own Node" in msg
    assert check(Request("node:n1", "update", "lease", "kube-node-lease", "n1")) is None
    assert check(Request("node:n1", "update", "lease", "kube-node-lease", "n2"))


def test_node_pods() -> None:
    assert check(Request("node:n1", "update_status", "pod", "default", "p", current=pod_on("n1"))) is None
    msg = check(Request("node:n1", "update_status", "pod", "default", "p", current=pod_on("n2")))
    assert msg and "not bound to n1" in msg
    assert check(Request("node:n1", "create", "deployment", "default", "d"))


def test_scheduler_and_strangers() -> None:
    assert check(Request("scheduler", "update", "pod", "default", "p")) is None
    assert check(Request("scheduler", "delete", "pod", "default", "p"))
    assert check(Request("mallory", "create", "pod", "default", "p"))
