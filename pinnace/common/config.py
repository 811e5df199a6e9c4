"""Command-line configuration shared by all components; every flag can also come from PINNACE_<FLAG>."""

from __future__ import annotations

import argparse
import os
from typing import Any


def env_default(flag: str, default: Any = None) -> Any:
    """The PINNACE_<FLAG> environment value for --flag-name, or the default."""
    name = "PINNACE_" + flag.lstrip("-").replace("-", "_").upper()
    return os.environ.get(name, default)


class EnvDefaultsParser(argparse.ArgumentParser):
    """An ArgumentParser whose options default to PINNACE_<OPTION> environment variables."""

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        long = next((a for a in args if isinstance(a, str) and a.startswith("--")), None)
        if long is not None and kwargs.get("action") not in ("help", "version"):
            value = env_default(long)
            if value is not None:
                if kwargs.get("action") == "store_true":
                    kwargs["default"] = value.lower() in ("1", "true", "yes", "on")
                else:
                    conv = kwargs.get("type")
                    kwargs["default"] = conv(value) if callable(conv) else value
                kwargs["required"] = False
        return super().add_argument(*args, **kwargs)


def add_common_args(parser: argparse.ArgumentParser, *, store: bool = True) -> None:
    """Flags every component understands: store endpoints, TLS, logging and metrics."""
    if store:
        parser.add_argument(
            "--store",
            default=env_default("--store", "127.0.0.1:7000"),
            help="comma-separated store endpoints host:port (env PINNACE_STORE)",
        )
    parser.add_argument(
        "--tls-dir",
        default=env_default("--tls-dir", ""),
        help="directory with ca.crt and this component's cert/key; empty = plaintext (env PINNACE_TLS_DIR)",
    )
    parser.add_argument(
        "--tls-name",
        default=env_default("--tls-name", ""),
        help="certificate base name inside --tls-dir (default: the component name)",
    )
    parser.add_argument("--log-level", default=env_default("--log-level", "info"))
    parser.add_argument("--log-format", default=env_default("--log-format", "console"), choices=["console", "json"])
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=int(env_default("--metrics-port", "0")),
        help="Prometheus /metrics HTTP port; 0 = off",
    )


def store_endpoints(ns: argparse.Namespace) -> list[str]:
    """The --store value as a list of host:port endpoints."""
    return [e.strip() for e in str(ns.store).split(",") if e.strip()]
