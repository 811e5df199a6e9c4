"""Real store replicas for tests: `start_store(tmp_path, replicas=1) -> StoreCluster`.

Starts `python -m services.store` processes on free loopback ports, waits until every replica
answers grpc.health.v1 SERVING, and always cleans up (stop(), context manager, or at exit).

    cluster = start_store(tmp_path)            # or: with start_store(tmp_path) as cluster:
    client = AsyncClient(endpoints=cluster.endpoints)
    ...
    cluster.kill(0); cluster.restart(0); cluster.pause(1); cluster.resume(1); cluster.stop()

As a pytest fixture:

    @pytest.fixture
    def store(tmp_path):
        cluster = start_store(tmp_path)
        yield cluster
        cluster.stop()
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pinnace.api import store_pb2, store_pb2_grpc
from pinnace.common import tls

REPO = Path(__file__).resolve().parents[2]
_live: set[StoreCluster] = set()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _flag_args(flags: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for k, v in flags.items():
        name = "--" + k.replace("_", "-")
        if v is True:
            out.append(name)
        elif v is False or v is None:
            continue
        else:
            out += [name, str(v)]
    return out


class StoreCluster:
    """A set of store replica processes on loopback."""

    def __init__(self, base: Path, replicas: int, flags: dict[str, Any]) -> None:
        self.base = base
        self.replicas = replicas
        self.flags = dict(flags)
        self.client_ports = [free_port() for _ in range(replicas)]
        self.peer_ports = [free_port() for _ in range(replicas)] if replicas > 1 else []
        self.endpoints = [f"127.0.0.1:{p}" for p in self.client_ports]
        self.data_dirs = [base / f"store-{i + 1}" for i in range(replicas)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * replicas
        self._logs: list[Any] = [None] * replicas
        # With tls_dir=DIR the replicas serve mutual TLS; the helper issues the "store" and "admin"
        # certificates there (if missing) and talks to the replicas as admin.
        self.tls_dir = str(flags["tls_dir"]) if flags.get("tls_dir") else ""
        self.tls: tls.TLSConfig | None = None
        if self.tls_dir:
            tls.ensure_cluster_pki(self.tls_dir)
            tls.issue(self.tls_dir, "store", "store")
            self.tls = tls.issue(self.tls_dir, "admin", "admin")

    def channel(self, i: int) -> grpc.Channel:
        """A blocking channel to replica i (mutual TLS as admin when the cluster uses TLS)."""
        return tls.secure_channel(self.endpoints[i], self.tls)

    def aio_channel(self, i: int) -> grpc.aio.Channel:
        return tls.secure_aio_channel(self.endpoints[i], self.tls)

    # ------------------------------------------------------------------ processes

    def command(self, i: int) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "services.store",
            "--id",
            str(i + 1),
            "--listen",
            self.endpoints[i],
            "--data-dir",
            str(self.data_dirs[i]),
        ]
        if self.replicas > 1:
            peers = ",".join(f"{j + 1}=127.0.0.1:{p}" for j, p in enumerate(self.peer_ports))
            cmd += ["--peers", peers, "--peer-listen", f"127.0.0.1:{self.peer_ports[i]}"]
        return cmd + _flag_args(self.flags)

    def log_path(self, i: int) -> Path:
        return self.base / f"store-{i + 1}.log"

    def start_process(self, i: int) -> None:
        self.data_dirs[i].mkdir(parents=True, exist_ok=True)
        log = open(self.log_path(i), "ab")
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("PINNACE_LOG_LEVEL", "info")
        self.procs[i] = subprocess.Popen(
            self.command(i), cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self._logs[i] = log

    def _reap(self, i: int, timeout: float = 10.0) -> None:
        p = self.procs[i]
        if p is not None:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs[i] = None
        if self._logs[i] is not None:
            self._logs[i].close()
            self._logs[i] = None

    def alive(self, i: int) -> bool:
        p = self.procs[i]
        return p is not None and p.poll() is None

    def wait_healthy(self, indices: list[int] | None = None, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for i in indices if indices is not None else range(self.replicas):
            while True:
                p = self.procs[i]
                if p is None or p.poll() is not None:
                    raise RuntimeError(f"store replica {i + 1} exited; log:\n{self.tail(i)}")
                try:
                    with self.channel(i) as ch:
                        r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                    if r.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"store replica {i + 1} not healthy after {timeout}s; log:\n{self.tail(i)}")
                time.sleep(0.05)

    def tail(self, i: int, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path(i).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # ------------------------------------------------------------------ faults

    def kill(self, i: int) -> None:
        """SIGKILL replica i (no cleanup, like a crash)."""
        p = self.procs[i]
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            p.kill()
        self._reap(i)

    def terminate(self, i: int) -> None:
        """SIGTERM replica i and wait for it to exit."""
        p = self.procs[i]
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            p.terminate()
        self._reap(i)

    def restart(self, i: int, wait: bool = True) -> None:
        """Start replica i again (after kill/terminate; terminates it first if it is running)."""
        if self.alive(i):
            self.terminate(i)
        self.start_process(i)
        if wait:
            self.wait_healthy([i])

    def pause(self, i: int) -> None:
        p = self.procs[i]
        if p is not None:
            os.kill(p.pid, signal.SIGSTOP)

    def resume(self, i: int) -> None:
        p = self.procs[i]
        if p is not None:
            os.kill(p.pid, signal.SIGCONT)

    def pid(self, i: int) -> int:
        p = self.procs[i]
        return p.pid if p is not None else 0

    # ------------------------------------------------------------------ status

    def status(self, i: int, timeout: float = 2.0) -> store_pb2.StatusResponse:
        with self.channel(i) as ch:
            resp: store_pb2.StatusResponse = store_pb2_grpc.StoreStub(ch).Status(
                store_pb2.StatusRequest(), timeout=timeout
            )
            return resp

    def leader(self, timeout: float = 10.0) -> int:
        """Index of the current leader (waits for one)."""
        deadline = time.monotonic() + timeout
        while True:
            for i in range(self.replicas):
                if not self.alive(i):
                    continue
                try:
                    st = self.status(i, timeout=1.0)
                except grpc.RpcError:
                    continue
                if st.role == "leader":
                    return i
            if time.monotonic() > deadline:
                raise TimeoutError("no store leader")
            time.sleep(0.05)

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        for i in range(self.replicas):
            p = self.procs[i]
            if p is not None and p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                    p.terminate()
                except ProcessLookupError:
                    pass
        for i in range(self.replicas):
            self._reap(i, timeout=5.0)
        _live.discard(self)

    def __enter__(self) -> StoreCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_store(tmp_path: Path | str, replicas: int = 1, wait: bool = True, **flags: Any) -> StoreCluster:
    """Start `replicas` store processes (extra flags become --flag-name value) and wait for health."""
    base = Path(tmp_path)
    base.mkdir(parents=True, exist_ok=True)
    for attempt in range(3):
        cluster = StoreCluster(base, replicas, flags)
        _live.add(cluster)
        try:
            for i in range(replicas):
                cluster.start_process(i)
            if wait:
                cluster.wait_healthy(timeout=30.0 + 10.0 * replicas)
            return cluster
        except RuntimeError as e:
            cluster.stop()
            # free_port's port can be taken before the replica binds it (e.g. as the source port of
            # another replica's connection attempt): start afresh on new ports.
            if attempt == 2 or "Address already in use" not in str(e):
                raise
            for d in cluster.data_dirs:
                shutil.rmtree(d, ignore_errors=True)
        except BaseException:
            cluster.stop()
            raise
    raise AssertionError("unreachable")


@atexit.register
def _cleanup() -> None:
    for c in list(_live):
        c.stop()
