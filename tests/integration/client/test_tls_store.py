"""SDK and CLI over mutual TLS to a real store started with --tls-dir."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pinnace.api import cluster_pb2
from pinnace.client import AsyncClient, errors
from pinnace.common import tls
from tests.support.store import free_port

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def tls_store(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    pki = tmp_path / "pki"
    tls.ensure_cluster_pki(pki)
    tls.issue(pki, "store", "store")
    tls.issue(pki, "admin", "admin")
    endpoint = f"127.0.0.1:{free_port()}"
    log = open(tmp_path / "store.log", "wb")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "services.store", "--id", "1", "--listen", endpoint]
    cmd += ["--data-dir", str(tmp_path / "d"), "--tls-dir", str(pki)]
    proc = subprocess.Popen(
        cmd,
        cwd=str(REPO),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        yield endpoint, pki
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def test_sdk_over_mtls(tls_store: tuple[str, Path]) -> None:
    endpoint, pki = tls_store
    c = AsyncClient([endpoint], tls=tls.load(pki, "admin"), retry_timeout=60)
    try:
        res = await c.list(cluster_pb2.Namespace)
        assert "default" in {n.metadata.name for n in res.items}
    finally:
        await c.close()
    plain = AsyncClient([endpoint], retry_timeout=1, timeout=1)
    try:
        with pytest.raises(errors.PinnaceError):
            await plain.list(cluster_pb2.Namespace)
    finally:
        await plain.close()


def test_cli_over_mtls(tls_store: tuple[str, Path], tmp_path: Path) -> None:
    endpoint, pki = tls_store
    env = {**os.environ, "PYTHONPATH": str(REPO), "PINNACE_CONFIG": str(tmp_path / "cfg"), "PINNACE_TIMEOUT": "60"}
    env.pop("PINNACE_STORE", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pinnace.cli.main", *args], env=env, cwd=str(REPO), capture_output=True, text=True
        )

    p = cli("--store", endpoint, "--tls-dir", str(pki), "get", "ns")
    assert p.returncode == 0 and "default" in p.stdout, p.stderr
    p = cli(
        "config",
        "set-context",
        "secure",
        "--endpoints",
        endpoint,
        "--ca",
        str(pki / "ca.crt"),
        "--cert",
        str(pki / "admin.crt"),
        "--key",
        str(pki / "admin.key"),
        "--use",
    )
    assert p.returncode == 0, p.stderr
    p = cli("get", "ns", "-o", "name")
    assert p.returncode == 0 and "namespace/default" in p.stdout, p.stderr
