"""Build a component's grpc.aio server: health, reflection, Prometheus metrics, TLS, per-call counters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import Counter, start_http_server

from pinnace.common.tls import TLSConfig, server_credentials

RPC_CALLS = Counter("pinnace_grpc_calls_total", "gRPC calls received", ["component", "method"])

_HEALTH_ATTR = "_pinnace_health"
_metrics_started: set[int] = set()


class _CountingInterceptor(grpc.aio.ServerInterceptor):
    """Counts calls per method without wrapping handlers (no per-call overhead beyond a counter)."""

    def __init__(self, component: str) -> None:
        self._component = component

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        RPC_CALLS.labels(self._component, handler_call_details.method).inc()
        return await continuation(handler_call_details)


SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5000),
]


def build_server(
    component: str,
    listen: str | None,
    tls: TLSConfig | None = None,
    metrics_port: int = 0,
    service_names: list[str] | None = None,
    count_calls: bool = True,
) -> grpc.aio.Server:
    """A grpc.aio server listening on `listen` (host:port or unix:PATH), with health and reflection.

    Register servicers on the returned server, then `await server.start()`. service_names are the
    full names of your services (for reflection), e.g. ["pinnace.v1.Store"].
    """
    interceptors = [_CountingInterceptor(component)] if count_calls else []
    server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=interceptors)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    setattr(server, _HEALTH_ATTR, health_servicer)
    names = [*(service_names or []), health.SERVICE_NAME, reflection.SERVICE_NAME]
    reflection.enable_server_reflection(names, server)
    if listen:
        add_listener(server, listen, tls)
    if metrics_port and metrics_port not in _metrics_started:
        start_http_server(metrics_port, addr="127.0.0.1")
        _metrics_started.add(metrics_port)
    return server


def add_listener(server: grpc.aio.Server, listen: str, tls: TLSConfig | None) -> int:
    """Listen on one more address; unix sockets are never TLS (node-local, protected by file mode)."""
    if tls is None or listen.startswith("unix:"):
        port = server.add_insecure_port(listen)
    else:
        port = server.add_secure_port(listen, server_credentials(tls))
    if port == 0 and not listen.startswith("unix:"):
        raise OSError(f"cannot listen on {listen}")
    return port


async def health_serving(server: grpc.aio.Server, serving: bool = True) -> None:
    """Mark the whole server SERVING (or NOT_SERVING) for grpc.health.v1."""
    h: Any = getattr(server, _HEALTH_ATTR)
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    await h.set("", status)
