"""Store errors: a gRPC status code and a human message (with the field path for invalid input)."""

from __future__ import annotations

import grpc

CONFLICT_MESSAGE = "the object has been modified; please apply your changes to the latest version and try again"


class StoreError(Exception):
    """An error the server returns to the client as a gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(field: str, message: str) -> StoreError:
    return StoreError(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {message}" if field else message)


def not_found(what: str) -> StoreError:
    return StoreError(grpc.StatusCode.NOT_FOUND, f"{what} not found")


def already_exists(what: str) -> StoreError:
    return StoreError(grpc.StatusCode.ALREADY_EXISTS, f"{what} already exists")


def conflict(detail: str = "") -> StoreError:
    msg = f"Operation cannot be fulfilled on {detail}: {CONFLICT_MESSAGE}" if detail else CONFLICT_MESSAGE
    return StoreError(grpc.StatusCode.ABORTED, msg)
