"""Exceptions for store errors, one per gRPC status code, and the mapping from an RpcError.

PinnaceError
  NotFound             NOT_FOUND
  AlreadyExists        ALREADY_EXISTS
  Conflict             ABORTED (compare-and-swap on resource_version failed)
  Invalid              INVALID_ARGUMENT (``field_path`` parsed from the message)
  FailedPrecondition   FAILED_PRECONDITION
  Unavailable          UNAVAILABLE (no leader yet, replica down: retried by the SDK)
    Timeout            DEADLINE_EXCEEDED
  Gone                 OUT_OF_RANGE (watch from a compacted revision: relist)
  Unauthenticated      UNAUTHENTICATED
  Forbidden            PERMISSION_DENIED
  ResourceExhausted    RESOURCE_EXHAUSTED
"""

from __future__ import annotations

import re

import grpc


class PinnaceError(Exception):
    """Base of every SDK error; ``code`` is the gRPC status code, ``message`` the server's text."""

    code: grpc.StatusCode | None = None
    hint: str = ""

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(PinnaceError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(PinnaceError):
    code = grpc.StatusCode.ALREADY_EXISTS
    hint = "use `pinnace apply` to update an existing object"


class Conflict(PinnaceError):
    code = grpc.StatusCode.ABORTED
    hint = "the object changed since it was read; re-read it and try again"


class Invalid(PinnaceError):
    """INVALID_ARGUMENT; ``field_path`` is the offending field ("spec.containers[0].image") or ""."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None, field_path: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field_path = field_path if field_path is not None else parse_field_path(message)


class FailedPrecondition(PinnaceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unavailable(PinnaceError):
    code = grpc.StatusCode.UNAVAILABLE
    hint = "is the store running? check --store / PINNACE_STORE or `pinnace config view`"


class Timeout(Unavailable):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Gone(PinnaceError):
    code = grpc.StatusCode.OUT_OF_RANGE
    hint = "the revision was compacted; list again"


Expired = Gone


class Unauthenticated(PinnaceError):
    code = grpc.StatusCode.UNAUTHENTICATED
    hint = "check the client certificate of the current context (`pinnace config view`)"


class Forbidden(PinnaceError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(PinnaceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


_BY_CODE: dict[grpc.StatusCode, type[PinnaceError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.INVALID_ARGUMENT: Invalid,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Timeout,
    grpc.StatusCode.OUT_OF_RANGE: Gone,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: Forbidden,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
}

# "spec.containers[0].image: Required value", "metadata.name: Invalid value: ...",
# or "... (field spec.replicas)" / "field_path=spec.replicas".
_FIELD_PREFIX = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]*\])*(?:\.[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]*\])*)*)\s*:"
)
_FIELD_INLINE = re.compile(r"(?:field(?:[_ ]path)?[=: ]+)([A-Za-z_][A-Za-z0-9_.\[\]\"']*)")


def parse_field_path(message: str) -> str:
    """The field path a validation message names, or "" (``"spec.replicas: must be >= 0"`` -> ``spec.replicas``)."""
    m = _FIELD_PREFIX.match(message)
    if m and ("." in m.group(1) or "[" in m.group(1) or m.group(1) in ("metadata", "spec", "status", "kind")):
        return m.group(1)
    m = _FIELD_INLINE.search(message)
    if m:
        return m.group(1).rstrip(".,;)'\"")
    return ""


def from_rpc_error(exc: grpc.RpcError, what: str = "") -> PinnaceError:
    """Map a gRPC error to its SDK exception. ``what`` (e.g. "get pod default/web") prefixes transport errors."""
    code_fn = getattr(exc, "code", None)
    details_fn = getattr(exc, "details", None)
    code = code_fn() if callable(code_fn) else grpc.StatusCode.UNKNOWN
    details = (details_fn() if callable(details_fn) else None) or str(code)
    cls = _BY_CODE.get(code, PinnaceError)
    if cls is Invalid:
        field = ""
        meta_fn = getattr(exc, "trailing_metadata", None)
        md = meta_fn() if callable(meta_fn) else None
        for k, v in md or ():
            if k in ("field-path", "field_path"):
                field = v if isinstance(v, str) else v.decode()
        return Invalid(details, code=code, field_path=field or None)
    if cls is Unavailable and what:
        details = f"{what}: {details}"
    return cls(details, code=code)
