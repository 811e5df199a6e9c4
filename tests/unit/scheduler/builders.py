"""Small constructors for nodes and pods used by the scheduler's unit tests."""

from __future__ import annotations

from pinnace.api import meta_pb2, node_pb2, pod_pb2


def node(
    name: str,
    cpu: str = "4",
    mem: str = "8Gi",
    pods: int = 110,
    labels: dict[str, str] | None = None,
    taints: list[tuple[str, str, str]] | None = None,
    unschedulable: bool = False,
) -> node_pb2.Node:
    n = node_pb2.Node()
    n.metadata.name = name
    n.metadata.labels.update({"kubernetes.io/hostname": name, **(labels or {})})
    for key, q in (("cpu", cpu), ("memory", mem), ("pods", str(pods))):
        n.status.allocatable[key].CopyFrom(meta_pb2.Quantity(value=q))
    for k, v, e in taints or []:
        n.spec.taints.add(key=k, value=v, effect=e)
    n.spec.unschedulable = unschedulable
    return n


def pod(
    name: str,
    cpu: str | None = None,
    mem: str | None = None,
    labels: dict[str, str] | None = None,
    node_name: str = "",
    namespace: str = "default",
) -> pod_pb2.Pod:
    p = pod_pb2.Pod()
    p.metadata.name = name
    p.metadata.namespace = namespace
    p.metadata.labels.update(labels or {})
    c = p.spec.containers.add(name="c", image="busybox")
    if cpu:
        c.resources.requests["cpu"].CopyFrom(meta_pb2.Quantity(value=cpu))
    if mem:
        c.resources.requests["memory"].CopyFrom(meta_pb2.Quantity(value=mem))
    p.spec.node_name = node_name
    return p
