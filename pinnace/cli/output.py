"""Terminal output: kubectl-style tables (rich on a TTY, plain aligned text otherwise), ages, colour."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO


def is_tty(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Plain columns separated by three spaces, like kubectl (last column not padded)."""
    widths = [len(h) for h in headers]
    for r in rows:
        for i, cell in enumerate(r):
            if i < len(widths):
                widths[i] = max(widths[i], len(cell))
    lines = []
    for r in [list(headers), *[list(x) for x in rows]]:
        cells = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, stream: TextIO | None = None) -> None:
    """Print a table; rich (fitted to the terminal, bold header) on a TTY, plain text otherwise."""
    stream = stream or sys.stdout
    if not rows and not headers:
        return
    if is_tty(stream):
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", padding=(0, 3, 0, 0))
        for h in headers:
            table.add_column(h, no_wrap=True, overflow="ellipsis")
        for r in rows:
            table.add_row(*[colour_cell(c) for c in r])
        Console(file=stream).print(table)
    else:
        print(format_table(headers, rows), file=stream, flush=True)


_COLOURS = {
    "Running": "green",
    "Ready": "green",
    "Bound": "green",
    "Available": "green",
    "Active": "green",
    "Succeeded": "green",
    "True": "green",
    "Pending": "yellow",
    "ContainerCreating": "yellow",
    "Terminating": "yellow",
    "Released": "yellow",
    "Unknown": "yellow",
    "Warning": "yellow",
    "Failed": "red",
    "NotReady": "red",
    "Error": "red",
    "CrashLoopBackOff": "red",
    "False": "red",
    "Lost": "red",
}


def colour_cell(text: str) -> str:
    from rich.markup import escape

    style = _COLOURS.get(text)
    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def human_duration(seconds: float) -> str:
    """kubectl's short durations: 45s, 3m20s, 12m, 5h, 3d, 2y."""
    s = int(max(0, seconds))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    h = m // 60
    if h < 3:
        return f"{m}m"
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    d = h // 24
    if h < 48:
        return f"{h}h"
    if d < 365 * 2:
        return f"{d}d"
    return f"{d // 365}y"


def age(ts: Any, now: float | None = None) -> str:
    """Age of a google.protobuf.Timestamp ("<unknown>" when unset)."""
    if ts is None or not (ts.seconds or ts.nanos):
        return "<unknown>"
    now = time.time() if now is None else now
    return human_duration(now - (ts.seconds + ts.nanos / 1e9))


def err(message: str) -> None:
    """One line to stderr (red 'error:' prefix on a TTY)."""
    if is_tty(sys.stderr):
        print(f"\x1b[31merror:\x1b[0m {message}", file=sys.stderr, flush=True)
    else:
        print(f"error: {message}", file=sys.stderr, flush=True)


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
