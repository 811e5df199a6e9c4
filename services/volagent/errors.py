"""Errors a volume plugin raises; each maps onto one gRPC status code with a human message."""

from __future__ import annotations

import grpc


class VolumeError(Exception):
    """A volume that cannot be set up (yet); the message is shown on the pod by the node agent.

    FAILED_PRECONDITION is the default: the caller retries later (claim not bound yet, a
    mount that failed, a clone that failed).
    """

    def __init__(self, message: str, code: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message
