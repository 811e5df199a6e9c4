"""Mutual TLS with the cluster PKI: a CA-signed client gets in, a plaintext one does not."""

import os
import stat
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pinnace.common import server, tls


def test_keys_are_private(tmp_path: Path) -> None:
    tls.ensure_cluster_pki(tmp_path)
    tls.issue(tmp_path, "admin", "admin")
    for name in ("ca.key", "admin.key"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600


async def test_mtls_server(tmp_path: Path) -> None:
    tls.ensure_cluster_pki(tmp_path)
    srv_cfg = tls.issue(tmp_path, "store", "store")
    cli_cfg = tls.issue(tmp_path, "admin", "admin")
    srv = server.build_server("test", None)
    port = server.add_listener(srv, "127.0.0.1:0", srv_cfg)
    await srv.start()
    await server.health_serving(srv)
    try:
        async with tls.secure_aio_channel(f"127.0.0.1:{port}", cli_cfg) as ch:
            r = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert r.status == health_pb2.HealthCheckResponse.SERVING
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            with pytest.raises(grpc.aio.AioRpcError):
                await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=3)
        other = tmp_path / "other"
        tls.ensure_cluster_pki(other)
        stranger = tls.issue(other, "admin", "admin")
        async with tls.secure_aio_channel(f"127.0.0.1:{port}", stranger) as ch:
            with pytest.raises(grpc.aio.AioRpcError):
                await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=3)
    finally:
        await srv.stop(0)
