"""The runtime interface the pod workers drive: sandboxes (network namespace owners) and containers."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Mount:
    """A host path bound at a path inside the container."""

    source: str
    target: str
    read_only: bool = False


@dataclass
class ContainerConfig:
    """Everything a runtime needs to start one container attempt."""

    name: str
    image: str
    argv: list[str]  # command + args (host runtime)
    env: dict[str, str]
    command: list[str] = field(default_factory=list)  # Kubernetes command (Docker entrypoint)
    args: list[str] = field(default_factory=list)  # Kubernetes args (Docker cmd)
    cwd: str = ""
    mounts: list[Mount] = field(default_factory=list)
    memory_limit: int | None = None  # bytes
    cpu_millis: int | None = None
    attempt: int = 0
    log_dir: str = ""  # pods/<uid>/logs/<container>
    resolv_conf: str = ""  # host file to bind at /etc/resolv.conf ("" = none)
    tty: bool = False
    hostname: str = ""  # the pod's hostname ("" = the node's, e.g. hostNetwork pods)
    pod_memory_limit: int | None = None  # pod-level limits (sum over containers), when every one has one
    pod_cpu_millis: int | None = None


@dataclass
class Sandbox:
    """The pod's network namespace owner: a named netns (host) or a pause-like container (docker)."""

    pod_uid: str
    id: str
    netns_path: str
    pid: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"pod_uid": self.pod_uid, "id": self.id, "netns_path": self.netns_path, "pid": self.pid}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sandbox:
        return cls(pod_uid=d["pod_uid"], id=d["id"], netns_path=d["netns_path"], pid=int(d.get("pid", 0)))


@dataclass
class ContainerRecord:
    """One started container attempt, persisted in the pod's state file for adoption after a restart."""

    name: str
    id: str
    attempt: int
    pid: int = 0
    shim_pid: int = 0
    shim_start: int = 0  # the shim's start time in clock ticks (guards against pid reuse)
    started_at: float = 0.0
    dir: str = ""  # runtime's per-attempt directory (host runtime)
    log_path: str = ""
    image: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContainerRecord:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class ContainerExit:
    """How a container attempt ended."""

    exit_code: int
    signal: int = 0
    reason: str = ""  # Completed, Error, OOMKilled, StartError, ...
    message: str = ""
    finished_at: float = 0.0


class StartError(Exception):
    """The container could not be started (bad command, missing image, ...)."""


class ExecSession(abc.ABC):
    """A running exec: stdin in, stdout/stderr out, exit code at the end."""

    @abc.abstractmethod
    async def write_stdin(self, data: bytes) -> None: ...

    @abc.abstractmethod
    async def close_stdin(self) -> None: ...

    @abc.abstractmethod
    async def resize(self, rows: int, cols: int) -> None: ...

    @abc.abstractmethod
    def output(self) -> AsyncIterator[tuple[str, bytes]]:
        """Yields ("stdout"|"stderr", data) until the command's output ends."""

    @abc.abstractmethod
    async def wait(self) -> int: ...

    @abc.abstractmethod
    async def kill(self) -> None: ...


class Runtime(abc.ABC):
    """A container runtime; every method is idempotent where it can be."""

    name = "abstract"

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect or prepare (called once by the agent)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def version(self) -> str:
        return self.name

    async def health(self) -> str:
        """ "" when the runtime can run containers, else what is wrong (the node turns NotReady)."""
        return ""

    @abc.abstractmethod
    async def create_sandbox(self, pod_uid: str, pod_name: str, namespace: str, host_network: bool = False) -> Sandbox:
        """The pod's network namespace owner; host_network=True shares the node's namespace."""

    @abc.abstractmethod
    async def sandbox_alive(self, sb: Sandbox) -> bool: ...

    @abc.abstractmethod
    async def remove_sandbox(self, sb: Sandbox) -> None: ...

    @abc.abstractmethod
    async def start_container(self, sb: Sandbox, pod_uid: str, cfg: ContainerConfig) -> ContainerRecord: ...

    @abc.abstractmethod
    async def container_exit(self, rec: ContainerRecord) -> ContainerExit | None:
        """None while the container runs; how it ended otherwise."""

    @abc.abstractmethod
    async def wait_container(self, rec: ContainerRecord) -> None:
        """Returns when the container is no longer running."""

    @abc.abstractmethod
    async def signal_container(self, rec: ContainerRecord, sig: int) -> None: ...

    @abc.abstractmethod
    async def remove_container(self, rec: ContainerRecord) -> None:
        """Free what the attempt holds (cgroups, docker container); keeps its logs."""

    @abc.abstractmethod
    async def exec(self, sb: Sandbox, rec: ContainerRecord, argv: list[str], tty: bool, stdin: bool) -> ExecSession: ...

    @abc.abstractmethod
    def logs(
        self, rec: ContainerRecord, follow: bool, tail_lines: int, timestamps: bool, alive: Any
    ) -> AsyncIterator[bytes]:
        """The container's log; `alive()` tells a follower whether to keep waiting for more."""

    async def remove_untracked(self, pod_uid: str, sb: Sandbox | None, keep: set[str]) -> list[str]:
        """Remove containers of the pod whose ids are not in keep (started by an agent that stopped
        before recording them); returns the removed ids."""
        return []

    @abc.abstractmethod
    async def list_sandbox_uids(self) -> set[str]:
        """Pod uids that have something of this runtime on the node (for garbage collection)."""

    @abc.abstractmethod
    async def cleanup_pod(self, pod_uid: str) -> None:
        """Remove whatever this runtime still holds for a pod uid (orphan collection)."""
