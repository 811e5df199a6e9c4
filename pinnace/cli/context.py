"""Shared helpers for CLI subcommand modules (pinnace.cli.cluster, net, pv, sched and the built-in verbs).

A subcommand module defines ``register(subparsers)``; its handlers get the parsed ``args`` and
return an exit code. The global flags (``--store``, ``--context``, ``--tls-dir``, ``--tls-name``,
``--insecure``, ``--timeout``, ``-n/--namespace``) are on the main parser and, via ``common_parent()``,
accepted after the verb too. Helpers:

- ``client_from_args(args) -> Client`` / ``async_client_from_args(args) -> AsyncClient``: a store
  client for the selected context and flags (see pinnace.cli.config for the precedence).
- ``tls_from_args(args)``, ``endpoints_from_args(args)``.
- ``resolve_kind(name) -> KindInfo`` (any plural/short name; CLIError with the known kinds).
- ``namespace_of(args, info)``: the namespace to use for a kind ("" for cluster-scoped).
- ``CLIError(message, hint=, usage=False)``: raise it; main prints ``error: message (hint: ...)``
  and exits 1 (2 when ``usage``). SDK errors (pinnace.client.errors) are reported the same way.
- ``common_parent()``: an argparse parent with the global flags, for ``add_parser(..., parents=[...])``.
- Tables: ``pinnace.cli.output.print_table(headers, rows)``; ``output.age(timestamp)``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from pinnace.cli import config as cli_config
from pinnace.client import AsyncClient, Client
from pinnace.common import kinds


class CLIError(Exception):
    """A user-facing error: one line, with an optional hint; ``usage`` selects exit code 2."""

    def __init__(self, message: str, hint: str = "", *, usage: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.usage = usage


def add_global_args(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """The flags every verb understands. With ``suppress`` they only override when given."""

    def d(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    g = parser.add_argument_group("connection")
    g.add_argument("--store", default=d(None), help="store endpoints host:port[,host:port] (env PINNACE_STORE)")
    g.add_argument("--context", default=d(None), help="context from the config file (`pinnace config`)")
    g.add_argument(
        "--tls-dir", default=d(None), help="directory with ca.crt and <tls-name>.crt/.key (env PINNACE_TLS_DIR)"
    )
    g.add_argument("--tls-name", default=d(None), help="certificate name in --tls-dir (default admin)")
    g.add_argument("--insecure", action="store_true", default=d(False), help="plaintext gRPC, no TLS")
    g.add_argument("--timeout", type=float, default=d(None), help="seconds to keep retrying an unavailable store")
    g.add_argument("-n", "--namespace", default=d(None), help="namespace (default: the context's, else default)")


def common_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    add_global_args(p, suppress=True)
    return p


def endpoints_from_args(args: argparse.Namespace) -> list[str]:
    store = getattr(args, "store", None) or os.environ.get("PINNACE_STORE")
    if store:
        return [e.strip() for e in store.split(",") if e.strip()]
    try:
        ctx = cli_config.selected_context(args)
    except cli_config.ConfigError as exc:
        raise CLIError(str(exc), "see `pinnace config get-contexts`") from exc
    return list(ctx.endpoints) if ctx else [cli_config.DEFAULT_ENDPOINT]


def tls_from_args(args: argparse.Namespace) -> Any:
    """A pinnace.common.tls.TLSConfig, or None for plaintext."""
    if getattr(args, "insecure", False):
        return None
    tls_dir = getattr(args, "tls_dir", None) or os.environ.get("PINNACE_TLS_DIR")
    from pinnace.common import tls

    if tls_dir:
        name = getattr(args, "tls_name", None) or os.environ.get("PINNACE_TLS_NAME") or "admin"
        try:
            return tls.load(tls_dir, name)
        except OSError as exc:
            raise CLIError(f"cannot load TLS certificate {name!r} from {tls_dir}: {exc}", "check --tls-dir") from exc
    try:
        ctx = cli_config.selected_context(args)
    except cli_config.ConfigError as exc:
        raise CLIError(str(exc), "see `pinnace config get-contexts`") from exc
    if ctx is None or not (ctx.ca or ctx.cert or ctx.key):
        return None
    try:
        with open(ctx.ca, "rb") as ca, open(ctx.cert, "rb") as cert, open(ctx.key, "rb") as key:
            return tls.TLSConfig(ca=ca.read(), cert=cert.read(), key=key.read())
    except OSError as exc:
        raise CLIError(
            f"context {ctx.name!r}: cannot read certificate: {exc}", "fix it with `pinnace config set-context`"
        ) from exc


def _timeouts(args: argparse.Namespace) -> tuple[float, float]:
    """(per-call timeout, retry timeout)."""
    t = getattr(args, "timeout", None)
    t = float(t) if t is not None else float(os.environ.get("PINNACE_TIMEOUT", "15"))
    return max(1.0, min(10.0, t)), t


def client_from_args(args: argparse.Namespace) -> Client:
    call, retry = _timeouts(args)
    return Client(endpoints_from_args(args), tls_from_args(args), timeout=call, retry_timeout=retry)


def async_client_from_args(args: argparse.Namespace) -> AsyncClient:
    call, retry = _timeouts(args)
    return AsyncClient(endpoints_from_args(args), tls_from_args(args), timeout=call, retry_timeout=retry)


def resolve_kind(name: str) -> kinds.KindInfo:
    try:
        return kinds.lookup(name)
    except kinds.UnknownKind:
        names = ", ".join(sorted({k.plural for k in kinds.KINDS}))
        raise CLIError(f"unknown resource type {name!r}", f"known: {names}", usage=True) from None


def namespace_of(args: argparse.Namespace, info: kinds.KindInfo | None = None) -> str:
    if info is not None and not info.namespaced:
        return ""
    ns = getattr(args, "namespace", None)
    if ns:
        return str(ns)
    try:
        ctx = cli_config.selected_context(args)
    except cli_config.ConfigError:
        ctx = None
    return ctx.namespace if ctx else "default"
