"""Run `python -m services.volagent` as a real process for tests, and talk to its socket."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import grpc

from pinnace.api import nodelocal_pb2, nodelocal_pb2_grpc

REPO = Path(__file__).resolve().parents[3]


class Agent:
    def __init__(
        self,
        base: Path,
        store: str,
        node: str = "node-1",
        *,
        binder: bool = True,
        env: dict[str, str] | None = None,
        extra: list[str] | None = None,
        run_dir: Path | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.base, self.store, self.node = base, store, node
        self.run_dir = run_dir or base / node / "run"
        self.data_dir = data_dir or base / node / "data"
        self.binder, self.env, self.extra = binder, env or {}, extra or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = base / f"{node}-volagent.log"

    @property
    def socket(self) -> str:
        return str(self.run_dir / "volagent.sock")

    def start(self) -> Agent:
        cmd = [sys.executable, "-m", "services.volagent", "--node-name", self.node, "--store", self.store,
               "--run-dir", str(self.run_dir), "--data-dir", str(self.data_dir),
               "--provision-dir", str(self.base / "provisioned"), "--reclaim-root", str(self.base),
               "--size-check-interval", "0.3", "--lease-duration", "3", "--renew-interval", "1",
               *self.extra]  # fmt: skip
        if not self.binder:
            cmd.append("--no-binder")
        env = {**os.environ, "PYTHONPATH": str(REPO), **self.env}
        if os.path.exists(self.socket):
            os.unlink(self.socket)  # left by a killed agent
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"volagent did not start:\n{self.tail()}")
            if os.path.exists(self.socket):
                with grpc.insecure_channel(f"unix:{self.socket}") as ch:
                    try:
                        grpc.channel_ready_future(ch).result(timeout=1)
                        return self
                    except grpc.FutureTimeoutError:
                        pass
            time.sleep(0.05)

    def tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stub(self) -> tuple[grpc.Channel, nodelocal_pb2_grpc.VolumesStub]:
        ch = grpc.insecure_channel(f"unix:{self.socket}")
        return ch, nodelocal_pb2_grpc.VolumesStub(ch)

    def mount(self, pod: object, timeout: float = 60) -> nodelocal_pb2.MountVolumesResponse:
        ch, stub = self.stub()
        with ch:
            res: nodelocal_pb2.MountVolumesResponse = stub.MountVolumes(
                nodelocal_pb2.MountVolumesRequest(pod=pod), timeout=timeout
            )
            return res

    def unmount(self, ns: str, name: str, uid: str) -> None:
        ch, stub = self.stub()
        with ch:
            stub.UnmountVolumes(nodelocal_pb2.UnmountVolumesRequest(namespace=ns, name=name, uid=uid), timeout=30)
