"""Bring a local cluster up, take it down, report its state (the work behind `pinnace up/down/status`)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from pinnace.api import object_pb2, storage_pb2, store_pb2, store_pb2_grpc
from pinnace.cluster import lab
from pinnace.cluster.layout import ClusterSpec, node_cgroup_root
from pinnace.cluster.pki import issue_all
from pinnace.common import tls

Say = Callable[[str], None]


class ClusterError(RuntimeError):
    """up/down could not do what was asked; the message says why and what to do."""


def _require_root() -> None:
    if os.geteuid() != 0:
        raise ClusterError("the local cluster needs root (it creates network namespaces); run with sudo")


def issue_pki(spec: ClusterSpec) -> None:
    """The cluster CA and a certificate per identity; existing ones are kept."""
    issue_all(str(spec.pki_dir), spec.node_names)


def admin_tls(spec: ClusterSpec) -> tls.TLSConfig | None:
    return tls.load(spec.pki_dir, "admin") if spec.tls else None


def supervisor_pid(spec: ClusterSpec) -> int | None:
    try:
        pid = int(spec.supervisor_pid_file.read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def write_cli_config(spec: ClusterSpec) -> Path:
    """Point the CLI at this cluster: ~/.pinnace/config (or $PINNACE_CONFIG)."""
    from pinnace.cli import config as cli_config

    return cli_config.write_local_context(
        name="local",
        endpoints=spec.store_endpoints(),
        ca=str(spec.pki_dir / "ca.crt") if spec.tls else "",
        cert=str(spec.pki_dir / "admin.crt") if spec.tls else "",
        key=str(spec.pki_dir / "admin.key") if spec.tls else "",
    )


def _stub(spec: ClusterSpec, endpoint: str) -> tuple[grpc.Channel, store_pb2_grpc.StoreStub]:
    ch = tls.secure_channel(endpoint, admin_tls(spec))
    return ch, store_pb2_grpc.StoreStub(ch)


@contextlib.contextmanager
def store_access(spec: ClusterSpec) -> Iterator[list[str]]:
    """Store endpoints this process can reach. With host access, the lab's own addresses (the host
    has a link into the lab); without, loopback forwarders into the control-plane namespace — never
    a lab address through the host's own routes, which would leave the machine."""
    if spec.host_access:
        yield spec.store_endpoints()
        return
    procs: list[subprocess.Popen[str]] = []
    endpoints = []
    try:
        for target in spec.store_endpoints():
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            proc = subprocess.Popen(
                [sys.executable, "-m", "pinnace.cluster.forward", lab.control_ns(spec), str(port), target],
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            assert proc.stdout is not None
            if proc.stdout.readline().strip() == "ready":
                endpoints.append(f"127.0.0.1:{port}")
        yield endpoints
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def ready_nodes(spec: ClusterSpec, endpoints: list[str]) -> list[str]:
    """Names of nodes whose Ready condition is True (empty when the store does not answer)."""
    for ep in endpoints:
        ch, stub = _stub(spec, ep)
        try:
            resp = stub.List(store_pb2.ListRequest(kind="node"), timeout=2)
        except grpc.RpcError:
            continue
        finally:
            ch.close()
        names = []
        for obj in resp.items:
            node = obj.node
            if any(c.type == "Ready" and c.status == "True" for c in node.status.conditions):
                names.append(node.metadata.name)
        return names
    return []


def up(spec: ClusterSpec, say: Say, timeout: float = 120.0) -> float:
    """Start the cluster (idempotent); return seconds until every node was Ready."""
    _require_root()
    start = time.monotonic()
    if supervisor_pid(spec) is not None:
        say(f"a cluster is already running from {spec.data_dir}; `pinnace down` first to rebuild it")
        return 0.0
    spec.save()
    issue_pki(spec)
    say(f"network lab: {len(spec.node_names)} node namespace(s), control plane in {lab.control_ns(spec)}")
    lab.build(spec)
    spec.logs_dir.mkdir(parents=True, exist_ok=True)
    with open(spec.logs_dir / "supervisor.log", "ab") as logf:
        subprocess.Popen(
            [sys.executable, "-m", "pinnace.cluster.supervisor", spec.data_dir],
            stdout=logf,
            stderr=logf,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd="/",
        )
    if spec.host_access:
        say(f"CLI configured: {write_cli_config(spec)}")
    else:
        say(f"no host access: run the CLI inside the control plane, `ip netns exec {lab.control_ns(spec)} pinnace ...`")
    want = set(spec.node_names)
    last = ""
    with store_access(spec) as endpoints:
        while time.monotonic() - start < timeout:
            ready = set(ready_nodes(spec, endpoints))
            msg = f"nodes ready: {len(ready & want)}/{len(want)}"
            if msg != last:
                say(msg)
                last = msg
            if want <= ready:
                took = time.monotonic() - start
                ensure_default_storage_class(spec, endpoints)
                return took
            time.sleep(0.25)
    raise ClusterError(f"nodes not Ready after {timeout:.0f}s; see `pinnace status` and the logs in {spec.logs_dir}")


def ensure_default_storage_class(spec: ClusterSpec, endpoints: list[str]) -> None:
    """A default StorageClass "standard" backed by the built-in hostPath provisioner, bound when a
    pod first uses the claim (so the volume is made on that pod's node)."""
    sc = storage_pb2.StorageClass(
        provisioner="pinnace.io/hostpath", reclaim_policy="Delete", volume_binding_mode="WaitForFirstConsumer"
    )
    sc.metadata.name = "standard"
    sc.metadata.annotations["storageclass.kubernetes.io/is-default-class"] = "true"
    for ep in endpoints:
        ch, stub = _stub(spec, ep)
        try:
            stub.Create(store_pb2.CreateRequest(object=object_pb2.Object(storage_class=sc)), timeout=5)
            return
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                return
        finally:
            ch.close()


def _pod_netns_names(spec: ClusterSpec, endpoints: list[str]) -> list[str]:
    names: list[str] = []
    for ep in endpoints:
        ch, stub = _stub(spec, ep)
        try:
            resp = stub.List(store_pb2.ListRequest(kind="pod", serializable=True), timeout=2)
        except grpc.RpcError:
            continue
        finally:
            ch.close()
        for obj in resp.items:
            names.append("pn-" + obj.pod.metadata.uid.replace("-", "")[:12])
        break
    return names


def _unmount_under(root: str) -> None:
    mounts = []
    with open("/proc/mounts") as f:
        for line in f:
            target = line.split()[1].replace("\\040", " ")
            if target == root or target.startswith(root.rstrip("/") + "/"):
                mounts.append(target)
    for target in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


def _node_cgroups(spec: ClusterSpec) -> list[Path]:
    """This cluster's pod cgroups: node_cgroup_root (v1: under each controller; v2: at the top)."""
    base = Path("/sys/fs/cgroup")
    found: list[Path] = []
    for node in spec.node_names:
        root = node_cgroup_root(spec.prefix, node)
        found += [*base.glob(f"*/{root}"), *base.glob(root)]
        if spec.prefix == "pinnace":
            found += base.glob(f"pinnace.slice/{node}")
    return [d for d in found if d.is_dir()]


def _kill_cgroup_processes(spec: ClusterSpec) -> None:
    """Kill what still runs in the nodes' pod cgroups (hostNetwork pods have no namespace to find them by)."""
    for top in _node_cgroups(spec):
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                for pid in procs.read_text().split():
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(int(pid), signal.SIGKILL)


def _remove_cgroups(spec: ClusterSpec) -> None:
    for top in _node_cgroups(spec):
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()
    lab_root = node_cgroup_root(spec.prefix, "").rstrip("/")
    for parent in [
        *Path("/sys/fs/cgroup").glob(f"*/{lab_root}"),
        *Path("/sys/fs/cgroup").glob(lab_root),
        *Path("/sys/fs/cgroup").glob("pinnace.slice"),
    ]:
        with contextlib.suppress(OSError):
            parent.rmdir()  # only when no other cluster still uses it


def down(spec: ClusterSpec, say: Say) -> None:
    """Stop every process and remove every namespace, link, route, mount and cgroup the cluster made."""
    _require_root()
    with store_access(spec) as endpoints:
        pod_netns = _pod_netns_names(spec, endpoints) if lab.ns_exists(lab.control_ns(spec)) else []
    pid = supervisor_pid(spec)
    if pid is not None:
        say("stopping components")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and supervisor_pid(spec) is not None:
            time.sleep(0.2)
        if supervisor_pid(spec) is not None:
            os.kill(pid, signal.SIGKILL)
    _kill_cgroup_processes(spec)
    # Pods the store no longer lists (e.g. evicted while their node was down) still have the
    # namespace their node agent made: the agents' own pod records name them too.
    for pod_dir in spec.root.glob("nodes/*/pods/*"):
        pod_netns.append("pn-" + pod_dir.name.replace("-", "")[:12])
    for ns in sorted(set(pod_netns)):
        lab.delete_ns(ns)
    say("removing namespaces, links and routes")
    lab.teardown(spec)
    _unmount_under(spec.data_dir)
    _unmount_under(spec.run_dir)
    time.sleep(0.2)
    _remove_cgroups(spec)
    with contextlib.suppress(FileNotFoundError):
        spec.status_file.unlink()
    say("cluster is down (data kept in " + spec.data_dir + "; `pinnace down --purge` removes it)")


def status(spec: ClusterSpec) -> dict[str, object]:
    """Supervisor view of the components plus each store replica's own status."""
    out: dict[str, object] = {"running": supervisor_pid(spec) is not None}
    try:
        out.update(json.loads(spec.status_file.read_text()))
    except FileNotFoundError:
        out["components"] = []
    stores = []
    with store_access(spec) as endpoints:
        out["ready_nodes"] = ready_nodes(spec, endpoints)
        for ep, shown in zip(endpoints, spec.store_endpoints(), strict=False):
            stores.append(_store_status(spec, ep, shown))
    out["stores"] = stores
    return out


def _store_status(spec: ClusterSpec, ep: str, shown: str) -> dict[str, object]:
    ch, stub = _stub(spec, ep)
    try:
        st = stub.Status(store_pb2.StatusRequest(), timeout=2)
        return {"endpoint": shown, "role": st.role, "leader": st.leader_id, "term": st.term, "revision": st.revision}
    except grpc.RpcError as exc:
        return {"endpoint": shown, "error": exc.code().name}
    finally:
        ch.close()
