"""CLI pieces without a store: columns, tables, durations, contexts file, apply's merge, explain, parsing."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pytest

from pinnace.api import apps_pb2, node_pb2, object_pb2, pod_pb2, service_pb2
from pinnace.cli import columns, config, output
from pinnace.cli.apply import planned_update, readiness
from pinnace.cli.context import CLIError, endpoints_from_args, namespace_of
from pinnace.cli.explain import explain_text
from pinnace.cli.main import build_parser, run
from pinnace.cli.resources import display_name, parse_targets
from pinnace.common import kinds


def _row(key: str, obj: object, **kw: bool) -> dict[str, str]:
    cols = columns.columns_for(key, **kw)
    return dict(zip([c.header for c in cols], columns.render_rows([obj], cols)[0], strict=True))


def test_pod_columns() -> None:
    p = pod_pb2.Pod()
    p.metadata.name = "web"
    p.metadata.creation_timestamp.FromSeconds(int(time.time()) - 125)
    p.spec.containers.add(name="a")
    p.spec.containers.add(name="b")
    p.spec.node_name = "n1"
    p.status.phase = "Running"
    p.status.pod_ip = "10.244.1.5"
    p.status.container_statuses.add(name="a", ready=True, restart_count=2)
    cs = p.status.container_statuses.add(name="b", ready=False, restart_count=1)
    cs.state.waiting.reason = "CrashLoopBackOff"
    row = _row("pod", p, wide=True)
    assert row["READY"] == "1/2"
    assert row["STATUS"] == "CrashLoopBackOff"
    assert row["RESTARTS"] == "3"
    assert row["AGE"] == "2m5s"
    assert row["IP"] == "10.244.1.5" and row["NODE"] == "n1"
    assert "IP" not in _row("pod", p)
    assert next(iter(_row("pod", p, all_namespaces=True))) == "NAMESPACE"
    p.metadata.deletion_timestamp.GetCurrentTime()
    assert columns.pod_status(p) == "Terminating"


def test_pending_and_init_status() -> None:
    p = pod_pb2.Pod()
    assert columns.pod_status(p) == "Pending"
    p.spec.init_containers.add(name="i1")
    p.spec.init_containers.add(name="i2")
    p.status.init_container_statuses.add(name="i1").state.terminated.exit_code = 0
    p.status.init_container_statuses.add(name="i2").state.running.SetInParent()
    assert columns.pod_status(p) == "Init:1/2"


def test_other_kind_columns() -> None:
    s = service_pb2.Service()
    s.metadata.name = "web"
    s.spec.type = "NodePort"
    s.spec.cluster_ip = "10.96.0.20"
    s.spec.ports.add(port=80, node_port=30080, protocol="TCP")
    s.spec.ports.add(port=53, protocol="UDP")
    row = _row("service", s)
    assert row["TYPE"] == "NodePort" and row["CLUSTER-IP"] == "10.96.0.20"
    assert row["PORT(S)"] == "80:30080/TCP,53/UDP" and row["EXTERNAL-IP"] == "<none>"

    d = apps_pb2.Deployment()
    d.metadata.name = "d"
    d.spec.replicas = 3
    d.status.ready_replicas = 2
    d.status.updated_replicas = 3
    d.status.available_replicas = 2
    row = _row("deployment", d)
    assert (row["READY"], row["UP-TO-DATE"], row["AVAILABLE"]) == ("2/3", "3", "2")

    n = node_pb2.Node()
    n.metadata.name = "n1"
    n.status.conditions.add(type="Ready", status="True")
    n.spec.unschedulable = True
    n.status.addresses.add(type="InternalIP", address="10.0.0.2")
    row = _row("node", n, wide=True)
    assert row["STATUS"] == "Ready,SchedulingDisabled" and row["INTERNAL-IP"] == "10.0.0.2"

    # A kind without a column spec still gets NAME and AGE.
    assert list(_row("no_such_kind", d)) == ["NAME", "AGE"]


def test_format_table_and_durations() -> None:
    text = output.format_table(["NAME", "STATUS"], [["a", "Running"], ["longer-name", "Pending"]])
    assert text.splitlines() == ["NAME          STATUS", "a             Running", "longer-name   Pending"]
    assert output.human_duration(5) == "5s"
    assert output.human_duration(130) == "2m10s"
    assert output.human_duration(3600 * 5) == "5h"
    assert output.human_duration(86400 * 3) == "3d"
    assert output.age(None) == "<unknown>"


def test_config_contexts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINNACE_CONFIG", str(tmp_path / "cfg"))
    monkeypatch.delenv("PINNACE_STORE", raising=False)
    args = argparse.Namespace(store=None, context=None, namespace=None)
    assert endpoints_from_args(args) == ["127.0.0.1:7000"]
    config.write_local_context("local", ["127.0.0.1:7100", "127.0.0.1:7101"], namespace="team")
    assert endpoints_from_args(args) == ["127.0.0.1:7100", "127.0.0.1:7101"]
    assert namespace_of(args) == "team"
    assert namespace_of(argparse.Namespace(store=None, context=None, namespace="x")) == "x"
    assert namespace_of(args, kinds.lookup("nodes")) == ""
    monkeypatch.setenv("PINNACE_STORE", "10.0.0.1:7000")
    assert endpoints_from_args(args) == ["10.0.0.1:7000"]
    assert endpoints_from_args(argparse.Namespace(store="h:1,h:2", context=None)) == ["h:1", "h:2"]
    monkeypatch.delenv("PINNACE_STORE")
    with pytest.raises(CLIError):
        endpoints_from_args(argparse.Namespace(store=None, context="nope"))
    cfg = config.load()
    assert cfg.current_context == "local" and cfg.get("local") is not None
    assert (tmp_path / "cfg").stat().st_mode & 0o077 == 0


def test_apply_merge_keeps_server_fields() -> None:
    live = object_pb2.Object()
    s = live.service
    s.metadata.name = "web"
    s.metadata.namespace = "default"
    s.metadata.uid = "u1"
    s.metadata.resource_version = "7"
    s.metadata.labels["old"] = "x"
    s.metadata.annotations["server"] = "kept"
    s.spec.cluster_ip = "10.96.0.9"
    s.spec.ports.add(port=80)
    s.spec.ports.add(port=81)
    s.spec.selector["app"] = "web"
    desired = object_pb2.Object()
    d = desired.service
    d.metadata.name = "web"
    d.metadata.namespace = "default"
    d.metadata.labels["new"] = "y"
    d.metadata.annotations["mine"] = "1"
    d.spec.ports.add(port=8080)
    d.spec.selector["app"] = "api"
    out = planned_update(live, desired).service
    assert out.metadata.uid == "u1" and out.metadata.resource_version == "7"  # CAS on what was read
    assert dict(out.metadata.labels) == {"new": "y"}
    assert dict(out.metadata.annotations) == {"server": "kept", "mine": "1"}
    assert out.spec.cluster_ip == "10.96.0.9"  # allocated by the store, not in the manifest
    assert [p.port for p in out.spec.ports] == [8080]  # lists are replaced whole
    assert dict(out.spec.selector) == {"app": "api"}


def test_readiness() -> None:
    d = apps_pb2.Deployment()
    d.spec.replicas = 2
    d.metadata.generation = 2
    d.status.observed_generation = 2
    d.status.available_replicas = 2
    d.status.updated_replicas = 2
    assert readiness(d, kinds.lookup("deploy"))[0]
    d.status.observed_generation = 1
    assert not readiness(d, kinds.lookup("deploy"))[0]
    p = pod_pb2.Pod()
    p.spec.containers.add(name="c")
    assert readiness(p, kinds.lookup("pod")) == (False, "Pending, 0/1 containers ready")
    p.status.conditions.add(type="Ready", status="True")
    assert readiness(p, kinds.lookup("pod"))[0]


def test_parse_targets_and_names() -> None:
    [(info, names)] = parse_targets(["po", "a", "b"])
    assert info.key == "pod" and names == ["a", "b"]
    both = parse_targets(["deploy/web", "svc/web", "deploy/api"])
    assert [(i.key, n) for i, n in both] == [("deployment", ["web", "api"]), ("service", ["web"])]
    assert [i.key for i, _ in parse_targets(["pods,svc"])] == ["pod", "service"]
    assert [i.key for i, _ in parse_targets(["all"])] == ["pod", "service", "deployment", "replica_set"]
    with pytest.raises(CLIError):
        parse_targets(["nosuch"])
    with pytest.raises(CLIError):
        parse_targets(["pod/a", "b"])
    assert display_name(kinds.lookup("deploy")) == "deployment.apps"
    assert display_name(kinds.lookup("po")) == "pod"
    # Every kind resolves by plural, kind and short names.
    for k in kinds.KINDS:
        for name in (k.plural, k.kind, *k.short_names):
            assert parse_targets([name])[0][0] is k


def test_explain() -> None:
    text = explain_text("deployment.spec.strategy")
    assert "KIND:       Deployment" in text and "FIELD:      spec.strategy <DeploymentStrategy>" in text
    assert "rollingUpdate" in text
    assert "FIELD:      spec.clusterIP" in explain_text("svc.spec.clusterIP")
    with pytest.raises(CLIError):
        explain_text("pod.spec.nope")


def test_parser_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    args = parser.parse_args(["get", "pods", "-n", "kube-system", "-o", "wide", "-l", "a=b"])
    assert args.namespace == "kube-system" and args.output == "wide" and args.selector == "a=b"
    args = parser.parse_args(["-n", "x", "get", "pods"])
    assert args.namespace == "x"
    with pytest.raises(SystemExit) as exc:
        run(["get", "--bogus-flag"])
    assert exc.value.code == 2
    assert run(["get", "nosuchkind"]) == 2
    assert "unknown resource type" in capsys.readouterr().err
    assert run(["explain"]) == 0
    assert run(["completion", "bash"]) == 0
    assert "_pinnace" in capsys.readouterr().out
