"""validate(obj): semantic checks per kind, as the store and the CLI use them."""

from __future__ import annotations

from typing import Any

import pytest

from pinnace.api import pod_pb2
from pinnace.manifest import FieldProblem, from_dict, validate


def _pod(spec: dict[str, Any], name: str = "p") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _c(**extra: Any) -> dict[str, Any]:
    return {"name": "c", "image": "nginx", **extra}


def problems(d: dict[str, Any]) -> list[FieldProblem]:
    return validate(from_dict(d, validate=False))


def paths(d: dict[str, Any]) -> list[str]:
    return [p.path for p in problems(d)]


def test_valid_pod() -> None:
    assert problems(_pod({"containers": [_c()]})) == []


def test_accepts_bare_kind_messages() -> None:
    assert validate(pod_pb2.Pod(metadata={"name": "p"}, spec={"containers": [{"name": "c", "image": "i"}]})) == []


@pytest.mark.parametrize(
    ("spec", "path", "words"),
    [
        ({"containers": []}, "spec.containers", "at least one container"),
        ({"containers": [{"name": "c"}]}, "spec.containers[0].image", "required"),
        ({"containers": [_c(name="Bad_Name")]}, "spec.containers[0].name", "not a valid name"),
        ({"containers": [_c(), _c()]}, "spec.containers[1].name", "duplicate container name"),
        ({"containers": [_c(ports=[{"containerPort": 70000}])]}, "spec.containers[0].ports[0].containerPort", "65535"),
        (
            {"containers": [_c(ports=[{"containerPort": 80, "protocol": "tcp"}])]},
            "spec.containers[0].ports[0].protocol",
            "did you mean 'TCP'",
        ),
        ({"containers": [_c()], "restartPolicy": "Sometimes"}, "spec.restartPolicy", "Always, OnFailure, Never"),
        ({"containers": [_c()], "dnsPolicy": "Cluster"}, "spec.dnsPolicy", "ClusterFirst"),
        ({"containers": [_c()], "dnsPolicy": "None"}, "spec.dnsConfig.nameservers", "required"),
        (
            {"containers": [_c(volumeMounts=[{"name": "v", "mountPath": "/v"}])]},
            "spec.containers[0].volumeMounts[0].name",
            "not declared",
        ),
        (
            {"containers": [_c()], "volumes": [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]},
            "spec.volumes[1].name",
            "duplicate volume",
        ),
        ({"containers": [_c()], "volumes": [{"name": "v"}]}, "spec.volumes[0]", "exactly one source"),
        (
            {"containers": [_c()], "volumes": [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}]},
            "spec.volumes[0]",
            "hostPath and emptyDir",
        ),
        (
            {"containers": [_c()], "volumes": [{"name": "v", "hostPath": {"path": "/x", "type": "Dir"}}]},
            "spec.volumes[0].hostPath.type",
            "DirectoryOrCreate",
        ),
        (
            {"containers": [_c()], "volumes": [{"name": "v", "nfs": {"server": "s", "path": "rel"}}]},
            "spec.volumes[0].nfs.path",
            "absolute",
        ),
        (
            {"containers": [_c(livenessProbe={"periodSeconds": 3})]},
            "spec.containers[0].livenessProbe",
            "exactly one handler",
        ),
        (
            {"containers": [_c(livenessProbe={"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}})]},
            "spec.containers[0].livenessProbe",
            "exec and tcpSocket",
        ),
        (
            {"containers": [_c(readinessProbe={"httpGet": {"path": "/"}})]},
            "spec.containers[0].readinessProbe.httpGet.port",
            "required",
        ),
        (
            {"containers": [_c(livenessProbe={"exec": {"command": ["x"]}, "successThreshold": 2})]},
            "spec.containers[0].livenessProbe.successThreshold",
            "must be 1",
        ),
        (
            {"containers": [_c(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})]},
            "spec.containers[0].resources.requests[cpu]",
            "more than the limit",
        ),
        (
            {"containers": [_c(resources={"limits": {"memory": "-1Gi"}})]},
            "spec.containers[0].resources.limits[memory]",
            "negative",
        ),
        ({"containers": [_c(env=[{"name": "A=B"}])]}, "spec.containers[0].env[0].name", "no '='"),
        ({"containers": [_c(restartPolicy="Always")]}, "spec.containers[0].restartPolicy", "only init containers"),
        (
            {"containers": [_c()], "tolerations": [{"operator": "Exists", "value": "x"}]},
            "spec.tolerations[0].value",
            "empty",
        ),
        (
            {"containers": [_c()], "tolerations": [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]},
            "spec.tolerations[0].effect",
            "NoExecute",
        ),
        ({"containers": [_c()], "nodeSelector": {"bad key!": "x"}}, "spec.nodeSelector[bad key!]", "not a valid key"),
        (
            {
                "containers": [_c()],
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "In"}]}]
                        }
                    }
                },
            },
            "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values",
            "non-empty",
        ),
        (
            {
                "containers": [_c()],
                "affinity": {
                    "podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {"weight": 0, "podAffinityTerm": {"topologyKey": "k"}}
                        ]
                    }
                },
            },
            "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
            "between 1 and 100",
        ),
    ],
)
def test_pod_problems(spec: dict[str, Any], path: str, words: str) -> None:
    found = problems(_pod(spec))
    assert any(p.path == path and words in p.message for p in found), found


def test_names() -> None:
    assert paths(_pod({"containers": [_c()]}, name="Web_1")) == ["metadata.name"]
    assert paths({"apiVersion": "v1", "kind": "Namespace", "metadata": {}}) == ["metadata.name"]
    assert paths({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}}) == ["metadata.name"]
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1svc"}, "spec": {"ports": [{"port": 80}]}}
    assert paths(svc) == ["metadata.name"]
    gen = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"generateName": "tmp-"}}
    assert paths(gen) == []


def _deploy(strategy: dict[str, Any] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "a"}},
        "template": {
            "metadata": {"labels": labels if labels is not None else {"app": "a"}},
            "spec": {"containers": [_c()]},
        },
    }
    if strategy is not None:
        spec["strategy"] = strategy
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": spec}


def test_deployment_rules() -> None:
    assert paths(_deploy()) == []
    assert paths(_deploy(labels={"app": "b"})) == ["spec.template.metadata.labels"]
    both0 = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}
    assert paths(_deploy(both0)) == ["spec.strategy.rollingUpdate.maxUnavailable"]
    bad_pct = {"rollingUpdate": {"maxSurge": "25 %", "maxUnavailable": "150%"}}
    assert paths(_deploy(bad_pct)) == [
        "spec.strategy.rollingUpdate.maxSurge",
        "spec.strategy.rollingUpdate.maxUnavailable",
    ]
    assert paths(_deploy({"type": "Canary"})) == ["spec.strategy.type"]
    assert paths(_deploy({"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})) == ["spec.strategy.rollingUpdate"]
    no_sel = _deploy()
    del no_sel["spec"]["selector"]
    assert paths(no_sel) == ["spec.selector"]
    never = _deploy()
    never["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert paths(never) == ["spec.template.spec.restartPolicy"]


def test_replicaset_selector_must_match() -> None:
    rs = _deploy(labels={"tier": "x"})
    rs["kind"] = "ReplicaSet"
    assert paths(rs) == ["spec.template.metadata.labels"]


def _svc(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": spec}


def test_service_rules() -> None:
    assert paths(_svc(ports=[{"port": 80, "targetPort": "http"}])) == []
    assert paths(_svc()) == ["spec.ports"]
    assert paths(_svc(clusterIP="None")) == []
    assert paths(_svc(type="Nodeport", ports=[{"port": 80}])) == ["spec.type"]
    assert paths(_svc(sessionAffinity="Sticky", ports=[{"port": 80}])) == ["spec.sessionAffinity"]
    assert paths(_svc(ports=[{"port": 80, "nodePort": 30001}])) == ["spec.ports[0].nodePort"]
    assert paths(_svc(ports=[{"port": 80}, {"port": 81}])) == ["spec.ports[0].name", "spec.ports[1].name"]
    assert paths(_svc(ports=[{"port": 80, "targetPort": "Not_A_Name"}])) == ["spec.ports[0].targetPort"]
    assert paths(_svc(ports=[{"port": 80, "protocol": "ICMP"}])) == ["spec.ports[0].protocol"]
    assert paths(_svc(clusterIP="10.0.0.300", ports=[{"port": 80}])) == ["spec.clusterIP"]
    affinity = {"clientIP": {"timeoutSeconds": 0}}
    assert paths(_svc(ports=[{"port": 80}], sessionAffinityConfig=affinity)) == [
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
    ]


def test_storage_rules() -> None:
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "pv"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/x"}},
    }
    assert paths(pv) == []
    pv["spec"]["accessModes"] = ["ReadWriteSometimes"]
    pv["spec"]["persistentVolumeReclaimPolicy"] = "Keep"
    pv["spec"]["nfs"] = {"server": "s", "path": "/p"}
    assert paths(pv) == ["spec.accessModes[0]", "spec.persistentVolumeReclaimPolicy", "spec"]
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"}, "spec": {}}
    assert paths(pvc) == ["spec.accessModes", "spec.resources.requests"]
    sc = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "s"},
        "reclaimPolicy": "Recycle",
    }
    assert paths(sc) == ["provisioner", "reclaimPolicy"]


def test_node_rules() -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n"},
        "spec": {"podCIDR": "10.244.1.1/24", "taints": [{"key": "k", "effect": "NoRun"}]},
        "status": {
            "addresses": [{"type": "LAN", "address": "1.2.3.4"}],
            "conditions": [{"type": "Ready", "status": "yes"}],
        },
    }
    assert paths(node) == [
        "spec.podCIDR",
        "spec.taints[0].effect",
        "status.addresses[0].type",
        "status.conditions[0].status",
    ]


def test_other_kinds() -> None:
    ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "type": "Info"}
    assert paths(ev) == ["type", "involvedObject.name"]
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l"},
        "spec": {"leaseDurationSeconds": 0},
    }
    assert paths(lease) == ["spec.leaseDurationSeconds"]
    ep = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "e"},
        "subsets": [{"addresses": [{"ip": "x"}], "ports": [{"port": 0}]}],
    }
    assert paths(ep) == ["subsets[0].addresses[0].ip", "subsets[0].ports[0].port"]


def test_unsupported_table_names_only_fields_pinnace_lacks() -> None:
    from pinnace.api import object_pb2
    from pinnace.manifest import schema
    from pinnace.manifest.unsupported import UNSUPPORTED

    messages: dict[str, Any] = {}

    def visit(d: Any) -> None:
        if d.full_name in messages:
            return
        messages[d.full_name] = d
        for f in d.fields:
            if f.message_type is not None:
                visit(f.message_type)

    visit(object_pb2.Object.DESCRIPTOR)
    for name, fields in UNSUPPORTED.items():
        assert name in messages, name
        assert not fields & set(schema.fields_by_json(messages[name])), name


def test_lookalikes_in_quoted_names_are_pointed_out() -> None:
    found = problems({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "my\u2010ns"}})
    assert len(found) == 1 and "U+2010 HYPHEN, which looks like '-' but is not" in found[0].message
    svc = _svc(type="Load\u2010Balancer", ports=[{"port": 80}])
    assert "U+2010" in problems(svc)[0].message


def test_enum_typos_get_suggestions() -> None:
    found = problems(_deploy({"type": "Recreat"}))
    assert "did you mean 'Recreate'?" in found[0].message


def test_cluster_scoped_kinds_ignore_namespace() -> None:
    assert paths({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "namespace": "b"}}) == []


def test_valid_pod_specs_are_remembered_and_invalid_ones_never() -> None:
    from pinnace.manifest import podvalidation, validation

    calls: list[int] = []
    real = validation._pod_spec

    def counting(*args: Any, **kw: Any) -> None:
        calls.append(1)
        real(*args, **kw)

    validation._VALID_POD_SPECS.clear()
    validation._pod_spec = counting  # type: ignore[assignment]
    try:
        for name in ("a", "b", "c"):  # one template, three pods: the spec is checked once
            assert problems(_pod({"containers": [_c(image="memo:1")]}, name=name)) == []
        assert len(calls) == 1
        bad = _pod({"containers": [_c(image="memo:1", imagePullPolicy="Sometimes")]})
        for _ in range(2):  # an invalid spec is reported every time
            assert paths(bad) == ["spec.containers[0].imagePullPolicy"]
        assert len(calls) == 3
        assert problems(_pod({"containers": [_c(image="memo:2")]})) == []  # other bytes: checked again
        assert len(calls) == 4
        for i in range(validation._VALID_POD_SPECS_MAX + 5):  # bounded
            assert problems(_pod({"containers": [_c(image=f"memo-{i}:1")]})) == []
        assert len(validation._VALID_POD_SPECS) == validation._VALID_POD_SPECS_MAX
    finally:
        validation._pod_spec = real  # type: ignore[assignment]
        validation._VALID_POD_SPECS.clear()
    assert podvalidation.validate_pod_spec is real
