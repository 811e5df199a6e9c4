"""$(VAR) expansion, $$ escapes, fieldRef values and defaults, like Kubernetes."""

from __future__ import annotations

from pinnace.api import pod_pb2
from services.nodeagent.envexpand import container_env, expand


def test_expand_defined_undefined_and_escapes() -> None:
    env = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)", env) == "1-two"
    assert expand("$(MISSING)", env) == "$(MISSING)"
    assert expand("$$(A)", env) == "$(A)"
    assert expand("$$", env) == "$"
    assert expand("cost $5", env) == "cost $5"
    assert expand("$(A", env) == "$(A"
    assert expand("trailing $", env) == "trailing $"


def test_container_env_order_and_field_refs() -> None:
    pod = pod_pb2.Pod()
    pod.metadata.name = "web"
    pod.metadata.namespace = "ns1"
    pod.metadata.labels["app"] = "x"
    pod.spec.node_name = "n1"
    c = pod.spec.containers.add(name="c")
    c.env.add(name="FIRST", value="f")
    c.env.add(name="SECOND", value="$(FIRST)-$(LATER)")
    c.env.add(name="LATER", value="l")
    c.env.add(name="POD").value_from.field_ref.field_path = "metadata.name"
    c.env.add(name="NODE").value_from.field_ref.field_path = "spec.nodeName"
    c.env.add(name="APP").value_from.field_ref.field_path = "metadata.labels['app']"
    env = container_env(pod, c, host_ip="10.0.0.1")
    assert env["SECOND"] == "f-$(LATER)"  # only earlier variables expand
    assert env["POD"] == "web" and env["NODE"] == "n1" and env["APP"] == "x"
    assert env["HOSTNAME"] == "web" and "PATH" in env
