"""The CLI's contexts file (kubeconfig-like YAML) and the `pinnace config` subcommand.

Location: ``$PINNACE_CONFIG`` or ``~/.pinnace/config``::

    current-context: local
    contexts:
    - name: local
      endpoints: [127.0.0.1:7000, 127.0.0.1:7001]
      ca: /var/lib/pinnace/pki/ca.crt       # mutual TLS; all three empty = plaintext
      cert: /var/lib/pinnace/pki/admin.crt
      key: /var/lib/pinnace/pki/admin.key
      namespace: default

Precedence for the store address: ``--store`` > ``$PINNACE_STORE`` > the context (``--context`` or
current-context) > 127.0.0.1:7000. TLS: ``--insecure`` (none) > ``--tls-dir``/``$PINNACE_TLS_DIR``
(with ``--tls-name``, default "admin") > the context's ca/cert/key.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_ENDPOINT = "127.0.0.1:7000"


class ConfigError(Exception):
    """A broken or incomplete contexts file."""


@dataclass
class Context:
    name: str
    endpoints: list[str] = field(default_factory=lambda: [DEFAULT_ENDPOINT])
    ca: str = ""
    cert: str = ""
    key: str = ""
    namespace: str = "default"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "endpoints": list(self.endpoints)}
        for k in ("ca", "cert", "key"):
            if getattr(self, k):
                out[k] = getattr(self, k)
        out["namespace"] = self.namespace
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Context:
        eps = d.get("endpoints") or [DEFAULT_ENDPOINT]
        if isinstance(eps, str):
            eps = [e.strip() for e in eps.split(",") if e.strip()]
        return cls(
            name=str(d.get("name", "")),
            endpoints=[str(e) for e in eps],
            ca=str(d.get("ca") or ""),
            cert=str(d.get("cert") or ""),
            key=str(d.get("key") or ""),
            namespace=str(d.get("namespace") or "default"),
        )


@dataclass
class Config:
    current_context: str = ""
    contexts: list[Context] = field(default_factory=list)

    def get(self, name: str) -> Context | None:
        return next((c for c in self.contexts if c.name == name), None)

    def upsert(self, ctx: Context) -> None:
        self.contexts = [c for c in self.contexts if c.name != ctx.name] + [ctx]


def config_path() -> Path:
    env = os.environ.get("PINNACE_CONFIG")
    return Path(env) if env else Path.home() / ".pinnace" / "config"


def load(path: Path | None = None) -> Config:
    path = path or config_path()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        return Config()
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with current-context and contexts")
    ctxs = [Context.from_dict(c) for c in raw.get("contexts") or [] if isinstance(c, dict)]
    return Config(current_context=str(raw.get("current-context") or ""), contexts=ctxs)


def save(cfg: Config, path: Path | None = None) -> Path:
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"current-context": cfg.current_context, "contexts": [c.to_dict() for c in cfg.contexts]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


def write_local_context(
    name: str,
    endpoints: list[str],
    ca: str = "",
    cert: str = "",
    key: str = "",
    namespace: str = "default",
    make_current: bool = True,
) -> Path:
    """Add or replace context ``name`` and (by default) make it current; returns the file written."""
    cfg = load()
    cfg.upsert(Context(name, list(endpoints), ca, cert, key, namespace))
    if make_current or not cfg.current_context:
        cfg.current_context = name
    return save(cfg)


def selected_context(args: argparse.Namespace) -> Context | None:
    """The context named by --context, else the current one, else None."""
    cfg = load()
    name = getattr(args, "context", None) or cfg.current_context
    if not name:
        return None
    ctx = cfg.get(name)
    if ctx is None and getattr(args, "context", None):
        known = ", ".join(c.name for c in cfg.contexts) or "none"
        raise ConfigError(f"no context {name!r} in {config_path()} (known: {known})")
    return ctx


# -- `pinnace config` ---------------------------------------------------------------------------


def _cmd(args: argparse.Namespace) -> int:
    cfg = load()
    action = args.config_action
    if action in (None, "view"):
        print(f"# {config_path()}")
        data = {"current-context": cfg.current_context, "contexts": [c.to_dict() for c in cfg.contexts]}
        print(yaml.safe_dump(data, sort_keys=False), end="")
    elif action == "current-context":
        if not cfg.current_context:
            raise ConfigError("no current context; set one with `pinnace config use-context NAME`")
        print(cfg.current_context)
    elif action == "get-contexts":
        for c in cfg.contexts:
            mark = "*" if c.name == cfg.current_context else " "
            tls = "mTLS" if c.cert else "plaintext"
            print(f"{mark} {c.name}\t{','.join(c.endpoints)}\t{tls}\t{c.namespace}")
    elif action == "use-context":
        if cfg.get(args.name) is None:
            raise ConfigError(f"no context {args.name!r}; known: {', '.join(c.name for c in cfg.contexts) or 'none'}")
        cfg.current_context = args.name
        save(cfg)
        print(f"switched to context {args.name!r}")
    elif action == "set-context":
        ctx = cfg.get(args.name) or Context(args.name)
        if args.endpoints:
            ctx.endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
        for attr in ("ca", "cert", "key", "namespace"):
            value = getattr(args, attr)
            if value is not None:
                setattr(ctx, attr, value)
        cfg.upsert(ctx)
        if args.use or not cfg.current_context:
            cfg.current_context = args.name
        path = save(cfg)
        print(f"context {args.name!r} written to {path}")
    elif action == "delete-context":
        if cfg.get(args.name) is None:
            raise ConfigError(f"no context {args.name!r}")
        cfg.contexts = [c for c in cfg.contexts if c.name != args.name]
        if cfg.current_context == args.name:
            cfg.current_context = ""
        save(cfg)
        print(f"deleted context {args.name!r}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("config", help="show or change contexts (store endpoints and certificates)")
    sub = p.add_subparsers(dest="config_action", metavar="ACTION")
    sub.add_parser("view", help="print the contexts file")
    sub.add_parser("current-context", help="print the current context's name")
    sub.add_parser("get-contexts", help="list contexts")
    use = sub.add_parser("use-context", help="make a context current")
    use.add_argument("name")
    s = sub.add_parser("set-context", help="add or change a context")
    s.add_argument("name")
    s.add_argument("--endpoints", help="comma-separated host:port list")
    s.add_argument("--ca")
    s.add_argument("--cert")
    s.add_argument("--key")
    s.add_argument("--namespace")
    s.add_argument("--use", action="store_true", help="also make it current")
    d = sub.add_parser("delete-context", help="remove a context")
    d.add_argument("name")
    p.set_defaults(func=_cmd)
