"""A stand-in volagent for node agent tests: Volumes on a unix socket, emptyDir-like directories."""

from __future__ import annotations

import os
import shutil
from typing import Any

import grpc

from pinnace.api import nodelocal_pb2, nodelocal_pb2_grpc


class FakeVolagent(nodelocal_pb2_grpc.VolumesServicer):
    def __init__(self, socket_path: str, base: str) -> None:
        self.socket_path = socket_path
        self.base = base
        self.server: grpc.aio.Server | None = None
        self.unmounted: list[str] = []

    async def start(self) -> None:
        os.makedirs(os.path.dirname(self.socket_path), exist_ok=True)
        self.server = grpc.aio.server()
        nodelocal_pb2_grpc.add_VolumesServicer_to_server(self, self.server)
        self.server.add_insecure_port(f"unix://{self.socket_path}")
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(0)
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        shutil.rmtree(self.base, ignore_errors=True)

    async def MountVolumes(
        self, request: nodelocal_pb2.MountVolumesRequest, context: Any
    ) -> nodelocal_pb2.MountVolumesResponse:
        out = nodelocal_pb2.MountVolumesResponse()
        for v in request.pod.spec.volumes:
            path = os.path.join(self.base, request.pod.metadata.uid, v.name)
            os.makedirs(path, exist_ok=True)
            out.volumes.add(name=v.name, host_path=path, read_only=False)
        return out

    async def UnmountVolumes(
        self, request: nodelocal_pb2.UnmountVolumesRequest, context: Any
    ) -> nodelocal_pb2.UnmountVolumesResponse:
        self.unmounted.append(request.uid)
        return nodelocal_pb2.UnmountVolumesResponse()
