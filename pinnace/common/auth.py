"""Who is calling: identities from client certificates, and the roles Pinnace knows."""

from __future__ import annotations

import grpc

from pinnace.common.tls import identity_of

ADMIN = "admin"
CONTROL_PLANE = frozenset({"store", "scheduler", "controllers", "binder"})


def caller(context: grpc.aio.ServicerContext | grpc.ServicerContext) -> str:
    """The caller's identity; "anonymous" on plaintext connections (no TLS configured)."""
    return identity_of(context) or "anonymous"


def node_name(identity: str) -> str | None:
    """For a node identity "node:NAME" the node's name, else None."""
    return identity.split(":", 1)[1] if identity.startswith("node:") else None
