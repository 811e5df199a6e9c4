"""Reading container log files in CRI format (`<time> <stream> <F|P> <text>`): tail, follow, rotation."""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterator, Callable


def decode_line(raw: bytes, timestamps: bool) -> bytes:
    """One CRI log record -> the text the user sees (with a trailing newline unless partial)."""
    parts = raw.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 4:
        return raw if raw.endswith(b"\n") else raw + b"\n"
    ts, _stream, tag, text = parts
    out = text if tag == b"P" else text + b"\n"
    return ts + b" " + out if timestamps else out


def files_of(path: str) -> list[str]:
    """The rotated files of one log, oldest first (path.N ... path.1, path)."""
    rotated: list[tuple[int, str]] = []
    d, base = os.path.split(path)
    try:
        for name in os.listdir(d or "."):
            if name.startswith(base + "."):
                suffix = name[len(base) + 1 :]
                if suffix.isdigit():
                    rotated.append((int(suffix), os.path.join(d, name)))
    except FileNotFoundError:
        return []
    out = [p for _, p in sorted(rotated, reverse=True)]
    if os.path.exists(path):
        out.append(path)
    return out


def read_all(path: str, tail_lines: int, timestamps: bool) -> tuple[list[bytes], int, int]:
    """Decoded lines (last tail_lines, or all if < 0) plus the inode and offset where the live file ends."""
    lines: deque[bytes] = deque(maxlen=tail_lines if tail_lines >= 0 else None)
    ino, offset = 0, 0
    for f in files_of(path):
        try:
            with open(f, "rb") as fh:
                if f == path:
                    ino = os.fstat(fh.fileno()).st_ino
                for raw in fh:
                    if not raw.endswith(b"\n"):
                        break  # a record still being written
                    lines.append(decode_line(raw, timestamps))
                    if f == path:
                        offset += len(raw)
        except FileNotFoundError:
            continue
    return list(lines), ino, offset


async def stream(
    path: str, follow: bool, tail_lines: int, timestamps: bool, alive: Callable[[], bool]
) -> AsyncIterator[bytes]:
    """Yield the log (tail), then, when following, new records until alive() is false."""
    lines, ino, offset = await asyncio.to_thread(read_all, path, tail_lines, timestamps)
    if lines:
        yield b"".join(lines)
    if not follow:
        return
    buf = b""
    idle_after_death = 0
    while True:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None and st.st_ino != ino:
            # Rotated: finish the old file under its new name is not tracked; start the new one.
            ino, offset, buf = st.st_ino, 0, b""
        if st is not None and st.st_size > offset:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(1 << 20)
            offset += len(data)
            buf += data
            out = []
            while True:
                i = buf.find(b"\n")
                if i < 0:
                    break
                out.append(decode_line(buf[: i + 1], timestamps))
                buf = buf[i + 1 :]
            if out:
                yield b"".join(out)
            continue
        if not alive():
            idle_after_death += 1
            if idle_after_death > 2:
                return
        await asyncio.sleep(0.2)
