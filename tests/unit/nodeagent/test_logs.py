"""The shim's CRI log writer (rotation, partial lines) and the agent's reader (tail, follow, timestamps)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.nodeagent import logfiles
from services.nodeagent.runtimes.shim import LogWriter


def test_writer_rotates_and_reader_sees_everything_kept(tmp_path: Path) -> None:
    path = str(tmp_path / "0.log")
    w = LogWriter(path, max_bytes=200, max_files=3)
    for i in range(20):
        w.feed("stdout", f"line {i}\n".encode())
    w.feed("stderr", b"partial")
    w.flush()
    files = logfiles.files_of(path)
    assert files[-1] == path and len(files) == 3  # 0.log.2, 0.log.1, 0.log
    lines, _, _ = logfiles.read_all(path, -1, False)
    text = b"".join(lines)
    assert text.endswith(b"line 19\npartial")
    assert b"line 0\n" not in text  # rotated away
    tail, _, _ = logfiles.read_all(path, 2, False)
    assert b"".join(tail) == b"line 19\npartial"


def test_decode_line_timestamps() -> None:
    raw = b"2026-01-01T00:00:00.000000001Z stdout F hello world\n"
    assert logfiles.decode_line(raw, False) == b"hello world\n"
    assert logfiles.decode_line(raw, True) == b"2026-01-01T00:00:00.000000001Z hello world\n"


async def test_follow_until_not_alive(tmp_path: Path) -> None:
    path = str(tmp_path / "0.log")
    w = LogWriter(path, max_bytes=1 << 20, max_files=2)
    w.feed("stdout", b"first\n")
    alive = True
    got: list[bytes] = []

    async def follow() -> None:
        async for chunk in logfiles.stream(path, True, -1, False, lambda: alive):
            got.append(chunk)

    task = asyncio.create_task(follow())
    await asyncio.sleep(0.3)
    w.feed("stdout", b"second\n")
    await asyncio.sleep(0.5)
    alive = False
    await asyncio.wait_for(task, 5)
    assert b"".join(got) == b"first\nsecond\n"
