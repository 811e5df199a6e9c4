"""Clients for the node-local helpers: the netagent (PodNetwork) and the volagent (Volumes), on unix sockets.

Both are optional: when a socket is absent the agent carries on (pods get a loopback-only netns; pods
with volumes wait with a clear reason).
"""

from __future__ import annotations

import os

import grpc

from pinnace.api import nodelocal_pb2, nodelocal_pb2_grpc, pod_pb2


class HelperUnavailable(Exception):
    """The helper's socket is absent or it does not answer."""


class _UnixClient:
    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._channel: grpc.aio.Channel | None = None

    def available(self) -> bool:
        return bool(self.socket_path) and os.path.exists(self.socket_path)

    def channel(self) -> grpc.aio.Channel:
        if not self.available():
            raise HelperUnavailable(f"{self.socket_path} does not exist")
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(f"unix://{self.socket_path}")
        return self._channel

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


def _unavailable(e: grpc.aio.AioRpcError) -> bool:
    return e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class NetagentClient(_UnixClient):
    """PodNetwork.SetupPod / TeardownPod."""

    async def setup_pod(self, pod: pod_pb2.Pod, netns_path: str, timeout: float = 30) -> nodelocal_pb2.SetupPodResponse:
        stub = nodelocal_pb2_grpc.PodNetworkStub(self.channel())
        try:
            resp: nodelocal_pb2.SetupPodResponse = await stub.SetupPod(
                nodelocal_pb2.SetupPodRequest(pod=pod, netns_path=netns_path), timeout=timeout
            )
            return resp
        except grpc.aio.AioRpcError as e:
            if _unavailable(e):
                raise HelperUnavailable(f"netagent: {e.details()}") from e
            raise

    async def teardown_pod(self, namespace: str, name: str, uid: str, netns_path: str, timeout: float = 30) -> None:
        stub = nodelocal_pb2_grpc.PodNetworkStub(self.channel())
        try:
            await stub.TeardownPod(
                nodelocal_pb2.TeardownPodRequest(namespace=namespace, name=name, uid=uid, netns_path=netns_path),
                timeout=timeout,
            )
        except grpc.aio.AioRpcError as e:
            if _unavailable(e):
                raise HelperUnavailable(f"netagent: {e.details()}") from e
            raise


class VolagentClient(_UnixClient):
    """Volumes.MountVolumes / UnmountVolumes."""

    async def mount_volumes(self, pod: pod_pb2.Pod, timeout: float = 120) -> list[nodelocal_pb2.MountedVolume]:
        stub = nodelocal_pb2_grpc.VolumesStub(self.channel())
        try:
            resp = await stub.MountVolumes(nodelocal_pb2.MountVolumesRequest(pod=pod), timeout=timeout)
            return list(resp.volumes)
        except grpc.aio.AioRpcError as e:
            if _unavailable(e):
                raise HelperUnavailable(f"volagent: {e.details()}") from e
            raise

    async def unmount_volumes(self, namespace: str, name: str, uid: str, timeout: float = 60) -> None:
        stub = nodelocal_pb2_grpc.VolumesStub(self.channel())
        try:
            await stub.UnmountVolumes(
                nodelocal_pb2.UnmountVolumesRequest(namespace=namespace, name=name, uid=uid), timeout=timeout
            )
        except grpc.aio.AioRpcError as e:
            if _unavailable(e):
                raise HelperUnavailable(f"volagent: {e.details()}") from e
            raise
