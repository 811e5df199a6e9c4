"""The Volumes gRPC service (proto/pinnace/v1/nodelocal.proto) on <run-dir>/volagent.sock."""

from __future__ import annotations

import os

import grpc

from pinnace.api import nodelocal_pb2, nodelocal_pb2_grpc
from pinnace.common.logging import get_logger
from pinnace.common.server import build_server
from services.volagent.errors import VolumeError
from services.volagent.manager import VolumeManager

log = get_logger("volagent.service")


class VolumesServicer(nodelocal_pb2_grpc.VolumesServicer):
    """MountVolumes / UnmountVolumes, both idempotent; errors are gRPC statuses with a clear message."""

    def __init__(self, manager: VolumeManager) -> None:
        self.manager = manager

    async def MountVolumes(
        self, request: nodelocal_pb2.MountVolumesRequest, context: grpc.aio.ServicerContext
    ) -> nodelocal_pb2.MountVolumesResponse:
        pod = request.pod
        try:
            mounted = await self.manager.mount_pod(pod)
        except VolumeError as exc:
            log.info("mount failed", pod=f"{pod.metadata.namespace}/{pod.metadata.name}", error=exc.message)
            await context.abort(exc.code, exc.message)
        except Exception as exc:  # a bug or an unexpected OS error: say what, keep serving
            log.exception("mount failed unexpectedly", pod=f"{pod.metadata.namespace}/{pod.metadata.name}")
            await context.abort(grpc.StatusCode.INTERNAL, f"volume setup failed: {type(exc).__name__}: {exc}")
        return nodelocal_pb2.MountVolumesResponse(
            volumes=[
                nodelocal_pb2.MountedVolume(name=m.name, host_path=m.host_path, read_only=m.read_only) for m in mounted
            ]
        )

    async def UnmountVolumes(
        self, request: nodelocal_pb2.UnmountVolumesRequest, context: grpc.aio.ServicerContext
    ) -> nodelocal_pb2.UnmountVolumesResponse:
        try:
            await self.manager.unmount_pod(request.uid)
        except VolumeError as exc:
            await context.abort(exc.code, exc.message)
        except Exception as exc:
            log.exception("unmount failed unexpectedly", uid=request.uid)
            await context.abort(grpc.StatusCode.INTERNAL, f"volume teardown failed: {type(exc).__name__}: {exc}")
        return nodelocal_pb2.UnmountVolumesResponse()


async def start_volumes_server(manager: VolumeManager, socket_path: str, metrics_port: int = 0) -> grpc.aio.Server:
    """Serve Volumes (plus health and reflection) on a unix socket only root can reach."""
    os.makedirs(os.path.dirname(socket_path), exist_ok=True)
    try:
        os.unlink(socket_path)  # a stale socket from a previous run
    except FileNotFoundError:
        pass
    server = build_server("volagent", None, metrics_port=metrics_port, service_names=["pinnace.v1.Volumes"])
    nodelocal_pb2_grpc.add_VolumesServicer_to_server(VolumesServicer(manager), server)
    old = os.umask(0o077)
    try:
        server.add_insecure_port(f"unix:{socket_path}")
        await server.start()
    finally:
        os.umask(old)
    return server
