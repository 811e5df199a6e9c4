"""The `pinnace` CLI run as a user runs it (subprocesses) against a real store on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.store import StoreCluster, start_store

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO.parent / "shared" / "fixtures" / "k8s-docs"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreCluster]:
    cluster = start_store(tmp_path_factory.mktemp("store"))
    yield cluster
    cluster.stop()


@pytest.fixture
def env(store: StoreCluster, tmp_path: Path) -> dict[str, str]:
    e = dict(os.environ)
    e.update(
        PINNACE_STORE=",".join(store.endpoints),
        PINNACE_CONFIG=str(tmp_path / "config"),
        PYTHONPATH=str(REPO) + os.pathsep + e.get("PYTHONPATH", ""),
        NO_COLOR="1",
    )
    e.pop("PINNACE_TLS_DIR", None)
    return e


def run(
    env: dict[str, str], *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(
        [sys.executable, "-m", "pinnace.cli.main", *args],
        env=env,
        cwd=str(REPO),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and p.returncode != 0:
        raise AssertionError(f"pinnace {' '.join(args)} -> {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
"""


def test_apply_kubernetes_examples(env: dict[str, str], tmp_path: Path) -> None:
    if not FIXTURES.is_dir():
        pytest.skip(f"k8s-docs fixtures not found at {FIXTURES}")
    from pinnace.common import kinds
    from pinnace.manifest import load_path

    files = sorted(FIXTURES.glob("*.yaml"))
    assert files
    # Namespaces the examples name must exist, as in a real cluster.
    namespaces = set()
    for f in files:
        for obj in load_path(f):
            ns = kinds.meta(obj).namespace
            if ns and ns != "default" and kinds.kind_of(obj).key != "namespace":
                namespaces.add(ns)
    for ns in sorted(namespaces):
        run(env, "apply", "-f", "-", stdin=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n")
    # Files that name the same object differently go to different batches (as separate users would).
    batches: list[tuple[list[Path], list[object]]] = []
    for f in files:
        objs = load_path(f)
        ids = {(kinds.kind_of(o).key, kinds.meta(o).namespace, kinds.meta(o).name) for o in objs}
        for batch_files, batch_ids in batches:
            if not ids & set(batch_ids):  # type: ignore[arg-type]
                batch_files.append(f)
                batch_ids.extend(ids)
                break
        else:
            batches.append(([f], list(ids)))
    described: set[str] = set()
    for batch_files, _ in batches:
        flags = [a for f in batch_files for a in ("-f", str(f))]
        objs = [o for f in batch_files for o in load_path(f)]
        out = run(env, "apply", *flags).stdout
        assert out.count(" created") == len(objs), out
        again = run(env, "apply", *flags).stdout
        assert again.count(" unchanged") == len(objs), f"re-apply changed something:\n{again}"
        for info in {kinds.kind_of(o).key: kinds.kind_of(o) for o in objs}.values():
            names = set(
                run(
                    env,
                    "get",
                    info.plural,
                    "-A" if info.namespaced else "-o",
                    *(["-o"] if info.namespaced else []),
                    "name",
                ).stdout.split()
            )
            want = {
                f"{info.kind.lower()}{'.' + info.group if info.group else ''}/{kinds.meta(o).name}"
                for o in objs
                if kinds.kind_of(o) is info
            }
            assert want <= names, (want, names)
        for obj in objs:
            info = kinds.kind_of(obj)
            if info.key in described:
                continue
            described.add(info.key)
            m = kinds.meta(obj)
            ns = ["-n", m.namespace or "default"] if info.namespaced else []
            got = json.loads(run(env, "get", info.plural, m.name, *ns, "-o", "json").stdout)
            assert got["kind"] == info.kind and got["metadata"]["name"] == m.name
            text = run(env, "describe", info.plural, m.name, *ns).stdout
            assert "Name:" in text and m.name in text and "Events:" in text
        out = run(env, "delete", *flags, "--force", "--wait", "--wait-timeout", "30").stdout
        assert out.count(" deleted") == len(objs), out


def test_get_describe_edit_scale_delete(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "apply", "-f", "-", stdin=DEPLOY)
    table = run(env, "get", "deploy").stdout.splitlines()
    assert table[0].split()[:5] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].split()[:2] == ["web", "0/2"]
    assert run(env, "get", "deployments", "-o", "name").stdout.strip() == "deployment.apps/web"
    wide = run(env, "get", "deploy/web", "-o", "wide").stdout
    assert "nginx:1.25" in wide and "app=web" in wide
    desc = run(env, "describe", "deployment", "web").stdout
    assert "Replicas:" in desc and "Events:" in desc

    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/image: nginx:1.25/image: nginx:1.26/" "$1"\n')
    editor.chmod(0o755)
    out = run({**env, "EDITOR": str(editor)}, "edit", "deploy", "web").stdout
    assert "edited" in out
    got = json.loads(run(env, "get", "deploy", "web", "-o", "json").stdout)
    assert got["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"

    # An editor that changes nothing cancels.
    noop = tmp_path / "noop.sh"
    noop.write_text("#!/bin/sh\ntrue\n")
    noop.chmod(0o755)
    p = run({**env, "EDITOR": str(noop)}, "edit", "deploy", "web")
    assert "no changes" in p.stderr

    run(env, "scale", "deploy", "web", "--replicas", "4")
    assert json.loads(run(env, "get", "deploy", "web", "-o", "json").stdout)["spec"]["replicas"] == 4
    p = run(env, "scale", "deploy", "web", "--replicas", "1", "--current-replicas", "3", check=False)
    assert p.returncode == 1 and "has 4 replicas" in p.stderr

    assert "deleted" in run(env, "delete", "deploy", "web", "--wait").stdout
    p = run(env, "get", "deploy", "web", check=False)
    assert p.returncode == 1 and 'deployment.apps "web" not found' in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_watch_sees_changes(env: dict[str, str]) -> None:
    run(env, "apply", "-f", "-", stdin="apiVersion: v1\nkind: Namespace\nmetadata:\n  name: watched\n")
    w = subprocess.Popen(
        [sys.executable, "-m", "pinnace.cli.main", "get", "pods", "-n", "watched", "-w", "--output-watch-events"],
        env=env,
        cwd=str(REPO),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2.5)  # let the watcher list and start watching
        pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: w1\n  namespace: watched\n  labels: {a: b}\n"
        pod += "spec:\n  containers:\n  - name: c\n    image: busybox\n"
        run(env, "apply", "-f", "-", stdin=pod)
        run(env, "apply", "-f", "-", stdin=pod.replace("{a: b}", "{a: c}"))
        run(env, "delete", "pod", "w1", "-n", "watched")
        deadline = time.time() + 20
        lines: list[str] = []
        assert w.stdout is not None
        while time.time() < deadline and not any(line.startswith("DELETED") for line in lines):
            line = w.stdout.readline()
            if not line:
                break
            lines.append(line)
        kinds_seen = [
            line.split()[0] for line in lines if line.split() and line.split()[0] in ("ADDED", "MODIFIED", "DELETED")
        ]
        assert kinds_seen == ["ADDED", "MODIFIED", "DELETED"], lines
    finally:
        w.terminate()
        w.wait(10)


def test_conflicts_reported_and_retried(env: dict[str, str], tmp_path: Path) -> None:
    run(env, "apply", "-f", "-", stdin=DEPLOY.replace("name: web", "name: conf"))
    # The editor saves a change while someone else changes the object: the CAS fails, clearly reported.
    editor = tmp_path / "racing-editor.sh"
    editor.write_text(
        "#!/bin/sh\n"
        f'"{sys.executable}" -m pinnace.cli.main scale deploy conf --replicas 7 >/dev/null\n'
        'sed -i "s/image: nginx:1.25/image: nginx:9/" "$1"\n'
    )
    editor.chmod(0o755)
    p = run({**env, "EDITOR": str(editor)}, "edit", "deploy", "conf", check=False)
    assert p.returncode == 1, p
    assert "changed by someone else" in p.stderr and "pinnace edit" in p.stderr
    got = json.loads(run(env, "get", "deploy", "conf", "-o", "json").stdout)
    assert got["spec"]["replicas"] == 7 and got["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"

    # Concurrent writers: scale (read-modify-write) retries its conflicts; all succeed.
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pinnace.cli.main", "scale", "deploy", "conf", "--replicas", str(n)],
            env=env,
            cwd=str(REPO),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2, 3, 4)
    ]
    for proc in procs:
        _, errs = proc.communicate(timeout=120)
        assert proc.returncode == 0, errs
    assert json.loads(run(env, "get", "deploy", "conf", "-o", "json").stdout)["spec"]["replicas"] in (1, 2, 3, 4)


def test_errors_and_exit_codes(env: dict[str, str], tmp_path: Path) -> None:
    p = run(env, "get", "nosuchkind", check=False)
    assert p.returncode == 2 and "unknown resource type" in p.stderr and "hint:" in p.stderr
    p = run(env, "frobnicate", check=False)
    assert p.returncode == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers: 3\n")
    p = run(env, "apply", "-f", str(bad), check=False)
    assert p.returncode == 1 and "bad.yaml:6" in p.stderr
    p = run(env, "apply", "-f", str(tmp_path / "missing.yaml"), check=False)
    assert p.returncode == 1 and "no such file" in p.stderr
    p = run({**env, "PINNACE_STORE": "127.0.0.1:1"}, "--timeout", "1", "get", "pods", check=False)
    assert p.returncode == 1 and "no store replica answered" in p.stderr and "hint:" in p.stderr
    dup = "apiVersion: v1\nkind: ConfigMapNope\n"
    p = run(env, "apply", "-f", "-", stdin=dup, check=False)
    assert p.returncode == 1


def test_logs_exec_without_node_agent(env: dict[str, str]) -> None:
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: lonely\nspec:\n  containers:\n  - name: c\n    image: busybox\n"
    )
    run(env, "apply", "-f", "-", stdin=pod)
    p = run(env, "logs", "lonely", check=False)
    assert p.returncode == 1 and "not scheduled to a node yet" in p.stderr
    node = "apiVersion: v1\nkind: Node\nmetadata:\n  name: ghost\n"
    run(env, "apply", "-f", "-", stdin=node)
    bound = pod.replace("name: lonely", "name: bound").replace("spec:\n", "spec:\n  nodeName: ghost\n")
    run(env, "apply", "-f", "-", stdin=bound)
    p = run(env, "logs", "bound", check=False)
    assert p.returncode == 1 and "does not publish a node agent endpoint" in p.stderr
    p = run(env, "exec", "bound", "--", "ls", check=False)
    assert p.returncode == 1 and "node agent" in p.stderr


def test_config_contexts_and_misc(env: dict[str, str], store: StoreCluster) -> None:
    e = {k: v for k, v in env.items() if k != "PINNACE_STORE"}
    run(e, "config", "set-context", "here", "--endpoints", ",".join(store.endpoints), "--use")
    assert run(e, "config", "current-context").stdout.strip() == "here"
    assert "Server: store replica" in run(e, "version").stdout
    run(e, "config", "set-context", "nowhere", "--endpoints", "127.0.0.1:1")
    p = run(e, "--context", "nowhere", "--timeout", "1", "get", "ns", check=False)
    assert p.returncode == 1
    assert "default" in run(e, "get", "ns").stdout
    assert "KIND:       Pod" in run(e, "explain", "pods.spec.containers").stdout
    assert "complete -F _pinnace pinnace" in run(e, "completion", "bash").stdout
    assert "requests" in run(e, "top", "nodes").stderr
    run(e, "events", "-A")


def test_describe_pending_pod_events_and_wait(env: dict[str, str], store: StoreCluster, tmp_path: Path) -> None:
    from pinnace.api import apps_pb2, cluster_pb2, pod_pb2
    from pinnace.client import Client

    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: waiter\nspec:\n  containers:\n  - name: c\n    image: busybox\n"
    )
    run(env, "apply", "-f", "-", stdin=pod)
    with Client(store.endpoints) as c:

        def unschedulable(p: pod_pb2.Pod) -> None:
            p.status.phase = "Pending"
            p.status.conditions.add(
                type="PodScheduled",
                status="False",
                reason="Unschedulable",
                message="0/3 nodes are available: 3 Insufficient cpu.",
            )

        live = c.mutate_status(pod_pb2.Pod, "waiter", "default", unschedulable)
        ev = cluster_pb2.Event()
        ev.metadata.name = "waiter.1"
        ev.metadata.namespace = "default"
        ev.involved_object.kind = "Pod"
        ev.involved_object.name = "waiter"
        ev.involved_object.uid = live.metadata.uid
        ev.reason = "FailedScheduling"
        ev.message = "0/3 nodes are available"
        ev.type = "Warning"
        ev.source.component = "scheduler"
        ev.last_timestamp.GetCurrentTime()
        c.create(ev)
        text = run(env, "describe", "pod", "waiter").stdout
        assert "Unschedulable: 0/3 nodes are available: 3 Insufficient cpu." in text
        assert "FailedScheduling" in text and "scheduler" in text.split("Events:")[1]
        evs = run(env, "events", "--for", "pod/waiter").stdout
        assert "FailedScheduling" in evs and "pod/waiter" in evs

        # apply --wait reports progress until the pod is Ready.
        manifest = tmp_path / "pod.yaml"
        manifest.write_text(pod)
        waiter = subprocess.Popen(
            [sys.executable, "-m", "pinnace.cli.main", "apply", "-f", str(manifest), "--wait", "--wait-timeout", "60"],
            env=env,
            cwd=str(REPO),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)
        assert waiter.poll() is None  # still waiting

        def ready(p: pod_pb2.Pod) -> None:
            p.status.phase = "Running"
            del p.status.conditions[:]
            p.status.conditions.add(type="Ready", status="True")
            p.status.container_statuses.add(name="c", ready=True)

        c.mutate_status(pod_pb2.Pod, "waiter", "default", ready)
        _, errs = waiter.communicate(timeout=60)
        assert waiter.returncode == 0, errs
        assert "waiting for pod/waiter: Pending" in errs and "pod/waiter ready" in errs

        # Rollout history and undo from the Deployment's ReplicaSets.
        run(env, "apply", "-f", "-", stdin=DEPLOY.replace("name: web", "name: roll"))
        d = c.get(apps_pb2.Deployment, "roll")
        for rev, image in ((1, "nginx:1.0"), (2, "nginx:2.0")):
            rs = apps_pb2.ReplicaSet()
            rs.metadata.name = f"roll-{rev}"
            rs.metadata.namespace = "default"
            rs.metadata.annotations["deployment.kubernetes.io/revision"] = str(rev)
            rs.metadata.owner_references.add(
                api_version="apps/v1", kind="Deployment", name="roll", uid=d.metadata.uid, controller=True
            )
            rs.spec.selector.match_labels["app"] = "web"
            rs.spec.template.CopyFrom(d.spec.template)
            rs.spec.template.metadata.labels["pod-template-hash"] = f"h{rev}"
            rs.spec.template.spec.containers[0].image = image
            c.create(rs)
        hist = run(env, "rollout", "history", "deployment/roll").stdout.split()
        assert hist[:4] == ["deployment.apps/roll", "REVISION", "CHANGE-CAUSE", "1"]
        assert "rolled back to revision 1" in run(env, "rollout", "undo", "deploy/roll").stdout
        after = c.get(apps_pb2.Deployment, "roll")
        assert after.spec.template.spec.containers[0].image == "nginx:1.0"
        assert "pod-template-hash" not in after.spec.template.metadata.labels
        p = run(env, "rollout", "status", "deploy/roll", "--no-watch", check=False)
        assert p.returncode == 1 and "Waiting for deployment" in p.stdout


def test_get_list_with_no_results_prints_an_empty_list(env: dict[str, str]) -> None:
    out = run(env, "get", "pods", "-l", "app=nothing-matches", "-o", "json").stdout
    assert json.loads(out) == {"apiVersion": "v1", "items": [], "kind": "List"}
    assert "items: []" in run(env, "get", "pods", "-l", "app=nothing-matches", "-o", "yaml").stdout
