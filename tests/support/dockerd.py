"""A private dockerd for tests: no iptables rules, no default bridge (network safety), its own
socket, with a data root kept under /var/tmp so that built images are reused across runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DATA_ROOT = Path("/var/tmp/pinnace-dockerd")


def docker_ok(host: str) -> bool:
    env = dict(os.environ, DOCKER_HOST=host)
    try:
        return subprocess.run(["docker", "info"], env=env, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def unavailable_reason() -> str:
    if os.geteuid() != 0:
        return "needs root to run dockerd"
    for tool in ("dockerd", "docker", "docker-compose"):
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian packages docker.io and docker-compose)"
    return ""


@contextmanager
def private_dockerd() -> Iterator[str]:
    """Start dockerd on its own socket; yield DOCKER_HOST; stop it and its mounts afterwards."""
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    run = DATA_ROOT / "run"
    run.mkdir(exist_ok=True)
    host = f"unix://{run}/docker.sock"
    argv = [
        "dockerd", "-H", host, "--data-root", str(DATA_ROOT / "root"), "--exec-root", str(run / "exec"),
        "--pidfile", str(run / "docker.pid"), "--iptables=false", "--ip6tables=false", "--bridge=none",
    ]  # fmt: skip
    log = open(DATA_ROOT / "dockerd.log", "ab")  # closed below
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not docker_ok(host):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not start; see {DATA_ROOT / 'dockerd.log'}")
            time.sleep(0.5)
        yield host
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
