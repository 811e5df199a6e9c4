"""Entry point of the `pinnace` command: builds the parser, dispatches, turns errors into one line.

Exit codes: 0 ok, 1 error, 2 usage error. Built-in verbs live in sibling modules; subcommand
modules owned by other parts (pinnace.cli.cluster, net, pv, sched) are imported when present and
their ``register(subparsers)`` called; see pinnace.cli.context for the helpers they can use.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pinnace.cli import output
from pinnace.cli.context import CLIError, add_global_args, client_from_args

BUILTIN = (
    "pinnace.cli.resources",
    "pinnace.cli.apply",
    "pinnace.cli.workloads",
    "pinnace.cli.nodeagent",
    "pinnace.cli.top",
    "pinnace.cli.explain",
    "pinnace.cli.config",
    "pinnace.cli.completion",
)
EXTRA = ("pinnace.cli.cluster", "pinnace.cli.net", "pinnace.cli.pv", "pinnace.cli.sched")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("pinnace")
    except Exception:
        return "0.1.0"


def cmd_version(args: argparse.Namespace) -> int:
    print(f"Client Version: pinnace {_version()} (python {sys.version.split()[0]})")
    if args.client:
        return 0
    with client_from_args(args) as client:
        st = client.status()
        print(
            f"Server: store replica {st.id} ({st.role}) at {client.aio.current_endpoint}, leader {st.leader_id}, "
            f"term {st.term}, revision {st.revision}"
        )
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line plus a hint, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        output.err(f"{message} (hint: `{self.prog} --help`)")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pinnace", description="Pinnace: a small, real Kubernetes. Manage cluster objects.")
    add_global_args(parser)
    subparsers = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=_Parser)
    for name in BUILTIN:
        importlib.import_module(name).register(subparsers)
    v = subparsers.add_parser("version", help="client and server versions")
    v.add_argument("--client", action="store_true", help="only the client version")
    v.set_defaults(func=cmd_version)
    for name in EXTRA:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    from pinnace.client import errors

    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(func(args) or 0)
    except CLIError as exc:
        output.err(exc.message + (f" (hint: {exc.hint})" if exc.hint else ""))
        return 2 if exc.usage else 1
    except errors.PinnaceError as exc:
        text = exc.message
        if isinstance(exc, errors.Invalid) and exc.field_path and exc.field_path not in text:
            text = f"{exc.field_path}: {text}"
        output.err(text + (f" (hint: {exc.hint})" if exc.hint else ""))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        from pinnace.cli.config import ConfigError

        try:
            from pinnace.manifest import ManifestError
        except ImportError:  # pragma: no cover
            ManifestError = ()  # type: ignore[assignment,misc]
        if isinstance(exc, ManifestError):
            for line in str(exc).splitlines():
                output.err(line)
            return 1
        if isinstance(exc, ConfigError):
            output.err(f"{exc} (hint: `pinnace config view`)")
            return 1
        if isinstance(exc, OSError):
            output.err(str(exc))
            return 1
        raise


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
