"""The supervisor: runs every component of a local cluster, restarts the ones that die (with
backoff) and reports their state in status.json. `python -m pinnace.cluster.supervisor DATA_DIR`.

SIGTERM stops the components in reverse start order and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

from pinnace.cluster.layout import ClusterSpec
from pinnace.cluster.plan import Component, components
from pinnace.common.logging import get_logger, setup_logging

log = get_logger("supervisor")
MAX_BACKOFF = 30.0


@dataclass
class Running:
    """A component and what the supervisor knows about it."""

    component: Component
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    state: str = "starting"
    since: float = field(default_factory=time.time)
    last_exit: int | None = None
    logfile: IO[bytes] | None = None


class Supervisor:
    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec
        self.items = [Running(c) for c in components(spec)]
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def _start(self, r: Running) -> None:
        self.spec.logs_dir.mkdir(parents=True, exist_ok=True)
        if r.logfile is None:
            path = self.spec.logs_dir / (r.component.name.replace("/", "-") + ".log")
            r.logfile = open(path, "ab")  # kept open for the process lifetime
        env = {**os.environ, **r.component.env, "PYTHONUNBUFFERED": "1"}
        r.proc = await asyncio.create_subprocess_exec(
            *r.component.command(), stdout=r.logfile, stderr=r.logfile, stdin=asyncio.subprocess.DEVNULL, env=env
        )
        r.state = "running"
        r.since = time.time()
        self.write_status()

    async def _watch(self, r: Running) -> None:
        backoff = 1.0
        while not self.stopping.is_set():
            await self._start(r)
            assert r.proc is not None
            started = time.monotonic()
            rc = await r.proc.wait()
            if self.stopping.is_set():
                break
            r.last_exit = rc
            r.restarts += 1
            r.state = "restarting"
            self.write_status()
            log.warning("component exited; restarting", component=r.component.name, exit_code=rc, backoff=backoff)
            if time.monotonic() - started > 60:
                backoff = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def write_status(self) -> None:
        data: dict[str, Any] = {
            "supervisor_pid": os.getpid(),
            "components": [
                {
                    "name": r.component.name,
                    "pid": r.proc.pid if r.proc else None,
                    "state": r.state,
                    "restarts": r.restarts,
                    "since": r.since,
                    "last_exit": r.last_exit,
                }
                for r in self.items
            ],
        }
        tmp = self.spec.status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.spec.status_file)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        for r in self.items:
            self.tasks.append(asyncio.create_task(self._watch(r)))
            if r.component.name.startswith("store-"):
                await asyncio.sleep(0.2)
        await self.stopping.wait()
        await self.stop_all()

    async def stop_all(self) -> None:
        for r in reversed(self.items):
            if r.proc and r.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    r.proc.terminate()
        deadline = time.monotonic() + 10
        for r in reversed(self.items):
            if r.proc is None:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(r.proc.wait(), max(0.1, deadline - time.monotonic()))
            if r.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    r.proc.kill()
                await r.proc.wait()
            r.state = "stopped"
        for t in self.tasks:
            t.cancel()
        self.write_status()


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    spec = ClusterSpec.load(args[0])
    setup_logging("supervisor", fmt="json")
    spec.supervisor_pid_file.write_text(str(os.getpid()))
    try:
        asyncio.run(Supervisor(spec).run())
    finally:
        with contextlib.suppress(FileNotFoundError):
            spec.supervisor_pid_file.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
