"""An in-memory Runtime for pod worker tests: containers are futures the test finishes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from services.nodeagent.runtimes.base import (
    ContainerConfig,
    ContainerExit,
    ContainerRecord,
    ExecSession,
    Runtime,
    Sandbox,
)


class FakeRuntime(Runtime):
    name = "fake"

    def __init__(self) -> None:
        self.sandboxes: dict[str, Sandbox] = {}
        self.exits: dict[str, ContainerExit | None] = {}
        self.events: dict[str, asyncio.Event] = {}
        self.started: list[ContainerConfig] = []
        self.signals: list[tuple[str, int]] = []
        self.cleaned: list[str] = []

    async def create_sandbox(self, pod_uid: str, pod_name: str, namespace: str, host_network: bool = False) -> Sandbox:
        sb = Sandbox(pod_uid=pod_uid, id=f"sb-{pod_uid}", netns_path=f"/fake/{pod_uid}")
        self.sandboxes[pod_uid] = sb
        return sb

    async def sandbox_alive(self, sb: Sandbox) -> bool:
        return sb.pod_uid in self.sandboxes

    async def remove_sandbox(self, sb: Sandbox) -> None:
        self.sandboxes.pop(sb.pod_uid, None)

    async def start_container(self, sb: Sandbox, pod_uid: str, cfg: ContainerConfig) -> ContainerRecord:
        cid = f"fake://{pod_uid}/{cfg.name}/{cfg.attempt}"
        self.exits[cid] = None
        self.events[cid] = asyncio.Event()
        self.started.append(cfg)
        return ContainerRecord(
            name=cfg.name, id=cid, attempt=cfg.attempt, pid=1, started_at=time.time(), image=cfg.image
        )

    def finish(self, cid: str, code: int, reason: str = "") -> None:
        self.exits[cid] = ContainerExit(code, 0, reason or ("Completed" if code == 0 else "Error"), "", time.time())
        self.events[cid].set()

    async def container_exit(self, rec: ContainerRecord) -> ContainerExit | None:
        return self.exits.get(rec.id)

    async def wait_container(self, rec: ContainerRecord) -> None:
        await self.events[rec.id].wait()

    async def signal_container(self, rec: ContainerRecord, sig: int) -> None:
        self.signals.append((rec.id, sig))
        if self.exits.get(rec.id) is None:
            self.finish(rec.id, 128 + sig)

    async def remove_container(self, rec: ContainerRecord) -> None:
        pass

    async def exec(self, sb: Sandbox, rec: ContainerRecord, argv: list[str], tty: bool, stdin: bool) -> ExecSession:
        raise NotImplementedError

    async def logs(
        self, rec: ContainerRecord, follow: bool, tail_lines: int, timestamps: bool, alive: Any
    ) -> AsyncIterator[bytes]:
        yield b""

    async def list_sandbox_uids(self) -> set[str]:
        return set(self.sandboxes)

    async def cleanup_pod(self, pod_uid: str) -> None:
        self.cleaned.append(pod_uid)
