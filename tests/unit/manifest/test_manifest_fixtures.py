"""Our own manifests under tests/fixtures/manifests load, validate, round-trip and cover every field of issue 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pinnace.manifest import load_path, load_paths, to_dict, validate

from ._support import OWN, assert_round_trips

FILES = sorted(p for p in OWN.iterdir() if p.suffix in (".yaml", ".json"))

# Kind + field path (list indices dropped) that the fixtures must use between them.
REQUIRED = [
    "Pod spec.containers.image",
    "Pod spec.containers.command",
    "Pod spec.containers.args",
    "Pod spec.containers.env.value",
    "Pod spec.containers.env.valueFrom.fieldRef.fieldPath",
    "Pod spec.containers.ports.containerPort",
    "Pod spec.containers.resources.requests.cpu",
    "Pod spec.containers.resources.limits.memory",
    "Pod spec.containers.volumeMounts.mountPath",
    "Pod spec.containers.livenessProbe.httpGet.port",
    "Pod spec.containers.readinessProbe.tcpSocket.port",
    "Pod spec.containers.startupProbe.exec.command",
    "Pod spec.restartPolicy",
    "Pod spec.nodeSelector",
    "Pod spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms",
    "Pod spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution.weight",
    "Pod spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution.podAffinityTerm",
    "Pod spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution.topologyKey",
    "Pod spec.tolerations.tolerationSeconds",
    "Pod spec.volumes.emptyDir",
    "Pod spec.volumes.emptyDir.sizeLimit",
    "Pod spec.volumes.gitRepo.repository",
    "Pod spec.volumes.nfs.server",
    "Pod spec.volumes.hostPath.path",
    "Pod spec.volumes.persistentVolumeClaim.claimName",
    "Service spec.ports.targetPort",
    "Service spec.ports.nodePort",
    "Service spec.selector",
    "Service spec.type",
    "Service spec.sessionAffinity",
    "Service spec.clusterIP",
    "Node spec.taints.effect",
    "Node spec.podCIDR",
    "Node status.capacity.cpu",
    "Node status.allocatable.memory",
    "Node status.conditions.status",
    "Node status.addresses.address",
    "PersistentVolume spec.hostPath.path",
    "PersistentVolume spec.nfs.path",
    "PersistentVolume spec.local.path",
    "PersistentVolume spec.persistentVolumeReclaimPolicy",
    "PersistentVolume spec.accessModes",
    "PersistentVolumeClaim spec.resources.requests.storage",
    "PersistentVolumeClaim spec.storageClassName",
    "StorageClass provisioner",
    "StorageClass volumeBindingMode",
    "Deployment spec.strategy.rollingUpdate.maxSurge",
    "Deployment spec.strategy.rollingUpdate.maxUnavailable",
    "Deployment spec.template.spec.containers.image",
    "ReplicaSet spec.selector.matchLabels",
    "Namespace metadata.name",
    "Lease spec.holderIdentity",
    "Lease spec.renewTime",
    "Event involvedObject.name",
    "Endpoints subsets.addresses.ip",
    "Endpoints subsets.ports.port",
]


def _paths(value: Any, prefix: str, out: set[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{prefix}.{k}" if prefix else k
            out.add(path)
            _paths(v, path, out)
    elif isinstance(value, list):
        for item in value:
            _paths(item, prefix, out)


def test_at_least_fifteen_fixtures() -> None:
    assert len(FILES) >= 15


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_own_fixture(path: Path) -> None:
    objs = load_path(path)
    assert objs
    for obj in objs:
        assert validate(obj) == []
    assert_round_trips(objs)


def test_fixtures_cover_every_field() -> None:
    seen: set[str] = set()
    for obj in load_paths(FILES):
        d = to_dict(obj)
        paths: set[str] = set()
        _paths(d, "", paths)
        seen.update(f"{d['kind']} {p}" for p in paths)
    missing = [r for r in REQUIRED if r not in seen]
    assert not missing


def test_int_and_percent_kept_as_written() -> None:
    by_name = {f"{d['kind']}/{d['metadata']['name']}": d for d in map(to_dict, load_path(OWN))}
    assert by_name["Deployment/api"]["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert by_name["Deployment/frontend"]["spec"]["strategy"]["rollingUpdate"] == {
        "maxUnavailable": "50%",
        "maxSurge": "25%",
    }
    assert by_name["Deployment/frontend"]["spec"]["replicas"] == 0  # optional: presence kept
    node = by_name["Node/node-1"]["status"]
    assert node["capacity"] == {"cpu": 4, "memory": "8Gi", "pods": 110}
    assert node["allocatable"]["memory"] == "7.5Gi"
    web = by_name["Pod/web-probes"]["spec"]
    assert web["volumes"][0] == {"name": "work", "emptyDir": {}}
    assert web["containers"][0]["readinessProbe"]["tcpSocket"]["port"] == "http"
    assert web["containers"][0]["resources"]["limits"]["cpu"] == "1.5"


def test_directory_loads_everything_in_order() -> None:
    objs = load_path(OWN)
    assert len(objs) == sum(len(load_path(f)) for f in FILES)
