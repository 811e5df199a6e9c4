"""A whole Pinnace cluster for end-to-end tests, started the way users start it (`pinnace up`),
in network namespaces with a test-only prefix and no host routes or links.

The test process reaches the store through a loopback forwarder (pinnace.cluster.forward) and
runs commands inside the lab's namespaces with `ip netns exec`. `down()` runs `pinnace down`
and then checks that nothing is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pinnace.client import Client
from pinnace.cluster.layout import CONTROL_PLANE_IP, STORE_PORT
from pinnace.common import tls

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LabCluster:
    def __init__(self, base: Path, nodes: int = 3, store_replicas: int = 3, prefix: str = "pnt", **flags: Any) -> None:
        self.base = base
        self.nodes = nodes
        self.store_replicas = store_replicas
        self.prefix = prefix
        self.data_dir = base / "data"
        self.run_dir = base / "run"
        self.flags = flags
        self.env = {**os.environ, "PINNACE_CONFIG": str(base / "cli-config"), "PYTHONPATH": str(ROOT)}
        self.forwarder: subprocess.Popen[str] | None = None
        self.client: Client | None = None
        self.up_seconds = 0.0

    @property
    def store_endpoints(self) -> list[str]:
        return [f"{CONTROL_PLANE_IP}:{STORE_PORT + i}" for i in range(self.store_replicas)]

    @property
    def pki(self) -> Path:
        return self.data_dir / "pki"

    def ns(self, what: str) -> str:
        return f"{self.prefix}-{what}"

    def up(self, timeout: float = 180) -> None:
        argv = [
            PY, "-m", "pinnace.cli.main", "up", "--nodes", str(self.nodes),
            "--store-replicas", str(self.store_replicas), "--prefix", self.prefix, "--no-host-access",
            "--data-dir", str(self.data_dir), "--run-dir", str(self.run_dir), "--timeout", str(timeout),
        ]  # fmt: skip
        for k, v in self.flags.items():
            argv += [f"--{k.replace('_', '-')}", str(v)]
        start = time.monotonic()
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout + 30)
        self.up_seconds = time.monotonic() - start
        if proc.returncode != 0:
            raise AssertionError(f"pinnace up failed ({proc.returncode}):\n{proc.stderr}\n{self.logs_tail()}")
        port = free_port()
        self.forwarder = subprocess.Popen(
            [PY, "-m", "pinnace.cluster.forward", self.ns("cp"), str(port), self.store_endpoints[0]],
            stdout=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        assert self.forwarder.stdout is not None
        assert self.forwarder.stdout.readline().strip() == "ready"
        self.client = Client([f"127.0.0.1:{port}"], tls.load(self.pki, "admin"))

    def logs_tail(self, lines: int = 30) -> str:
        out = []
        for f in sorted((self.data_dir / "logs").glob("*.log")):
            text = f.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {f.name}\n" + "\n".join(text))
        return "\n".join(out)

    def cli(self, *args: str, check: bool = True, timeout: float = 60, input: str | None = None) -> str:
        """Run `pinnace ARGS` as the admin, inside the control-plane namespace."""
        argv = [
            "ip", "netns", "exec", self.ns("cp"), PY, "-m", "pinnace.cli.main",
            "--store", ",".join(self.store_endpoints), "--tls-dir", str(self.pki), "--tls-name", "admin", *args,
        ]  # fmt: skip
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"pinnace {' '.join(args)} failed ({proc.returncode}): {proc.stderr}{proc.stdout}")
        return proc.stdout

    def in_ns(self, ns: str, *argv: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{argv} in {ns} failed: {proc.stderr}")
        return proc

    def http_get(self, ns: str, url: str, timeout: float = 5) -> str:
        code = (
            "import sys, urllib.request\n"
            f"print(urllib.request.urlopen({url!r}, timeout={timeout}).read().decode(), end='')\n"
        )
        return self.in_ns(ns, PY, "-c", code, timeout=timeout + 10).stdout

    def status(self) -> dict[str, Any]:
        return dict(json.loads((self.data_dir / "status.json").read_text()))

    def down(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
        if self.forwarder is not None:
            self.forwarder.kill()
            self.forwarder.wait()
        subprocess.run(
            [PY, "-m", "pinnace.cli.main", "down", "--data-dir", str(self.data_dir)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def leftovers(self) -> list[str]:
        """What the cluster left on the machine: namespaces, processes, mounts."""
        found = []
        for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n"):
            name = ns.split(" ")[0]
            if name.startswith(self.prefix + "-"):
                found.append(f"netns {name}")
        for pod_dir in self.data_dir.glob("nodes/*/pods/*"):
            netns = "pn-" + pod_dir.name.replace("-", "")[:12]
            if Path("/run/netns", netns).exists():
                found.append(f"pod netns {netns}")
        procs = subprocess.run(["pgrep", "-af", str(self.data_dir)], capture_output=True, text=True).stdout
        found += [f"process {p}" for p in procs.splitlines() if "pgrep" not in p]
        with open("/proc/mounts") as f:
            found += [f"mount {line.split()[1]}" for line in f if str(self.base) in line.split()[1]]
        return found
