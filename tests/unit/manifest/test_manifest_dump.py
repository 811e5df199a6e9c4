"""Dumping: Kubernetes-shaped dicts, YAML and JSON that load back to equal objects."""

from __future__ import annotations

import json

import yaml

from pinnace.api import pod_pb2
from pinnace.manifest import dump_json, dump_yaml, load_text, to_dict

from ._support import assert_round_trips

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, labels: {app: d}}
spec:
  replicas: 0
  paused: false
  selector: {matchLabels: {app: d}}
  strategy: {rollingUpdate: {maxSurge: 1, maxUnavailable: "10%"}}
  template:
    metadata: {labels: {app: d}}
    spec:
      hostNetwork: false
      volumes: [{name: v, emptyDir: {}}]
      containers:
      - name: c
        image: i
        resources: {requests: {cpu: 0.5, memory: "1000"}, limits: {cpu: 2, memory: 1Gi}}
        ports: [{containerPort: 80, name: http}]
        livenessProbe: {httpGet: {port: http, path: /}}
        readinessProbe: {tcpSocket: {port: 80}}
"""


def test_to_dict_shape() -> None:
    d = to_dict(load_text(DEPLOY)[0])
    assert list(d) == ["apiVersion", "kind", "metadata", "spec"]
    spec = d["spec"]
    assert spec["replicas"] == 0  # optional field: presence kept even at zero
    assert "paused" not in spec  # plain field at its default: left out
    assert spec["strategy"] == {"rollingUpdate": {"maxUnavailable": "10%", "maxSurge": 1}}
    pod = spec["template"]["spec"]
    assert "hostNetwork" not in pod
    assert pod["volumes"] == [{"name": "v", "emptyDir": {}}]
    c = pod["containers"][0]
    assert c["resources"] == {"requests": {"cpu": "0.5", "memory": 1000}, "limits": {"cpu": 2, "memory": "1Gi"}}
    assert c["livenessProbe"]["httpGet"]["port"] == "http"
    assert c["readinessProbe"]["tcpSocket"]["port"] == 80


def test_bare_kind_messages_dump_too() -> None:
    pod = pod_pb2.Pod(metadata={"name": "p"}, spec={"containers": [{"name": "c", "image": "i"}]})
    assert to_dict(pod)["kind"] == "Pod"
    assert yaml.safe_load(dump_yaml([pod]))["spec"]["containers"] == [{"name": "c", "image": "i"}]


def test_json_list_and_round_trips() -> None:
    objs = load_text(DEPLOY + "---\n" + DEPLOY.replace("name: d,", "name: e,"))
    data = json.loads(dump_json(objs))
    assert data["kind"] == "List" and len(data["items"]) == 2
    assert_round_trips(objs)


def test_multiline_and_lookalike_text_round_trip() -> None:
    text = DEPLOY.replace(
        "metadata: {name: d, labels: {app: d}}",
        "metadata:\n  name: d\n  labels: {app: d}\n  annotations:\n"
        '    note: "a \\u2013 b"\n    script: "line 1\\nline 2\\n"',
    )
    objs = load_text(text)
    out = dump_yaml(objs)
    assert "script: |" in out
    assert_round_trips(objs)


def test_camel_case_acronyms() -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {clusterIP: 10.96.0.5, ports: [{port: 1}]}\n"
    assert to_dict(load_text(text)[0])["spec"]["clusterIP"] == "10.96.0.5"
