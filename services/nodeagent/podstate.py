"""What the agent knows about one pod on its node, persisted as pods/<uid>/state.json for adoption."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from services.nodeagent.runtimes.base import ContainerExit, ContainerRecord, Sandbox


@dataclass
class ContainerState:
    """One container (init, sidecar or app) across its attempts."""

    name: str
    kind: str = "app"  # "init", "sidecar" or "app"
    record: ContainerRecord | None = None  # the current (or last) attempt
    exit: ContainerExit | None = None  # how the current attempt ended (None while running)
    last_exit: ContainerExit | None = None  # how the previous attempt ended (lastState)
    last_record: ContainerRecord | None = None
    restart_count: int = 0
    attempts: int = 0  # attempts started so far (next attempt number)
    backoff_until: float = 0.0
    waiting_reason: str = ""
    waiting_message: str = ""
    # not persisted: probe results
    ready: bool = False
    started: bool = False
    liveness_failed: bool = False
    spec_changed: bool = False  # the image changed: restart whatever the restart policy

    @property
    def running(self) -> bool:
        return self.record is not None and self.exit is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "record": self.record.to_dict() if self.record else None,
            "exit": self.exit.__dict__ if self.exit else None,
            "last_exit": self.last_exit.__dict__ if self.last_exit else None,
            "last_record": self.last_record.to_dict() if self.last_record else None,
            "restart_count": self.restart_count,
            "attempts": self.attempts,
            "backoff_until": self.backoff_until,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContainerState:
        return cls(
            name=d["name"],
            kind=d.get("kind", "app"),
            record=ContainerRecord.from_dict(d["record"]) if d.get("record") else None,
            exit=ContainerExit(**d["exit"]) if d.get("exit") else None,
            last_exit=ContainerExit(**d["last_exit"]) if d.get("last_exit") else None,
            last_record=ContainerRecord.from_dict(d["last_record"]) if d.get("last_record") else None,
            restart_count=int(d.get("restart_count", 0)),
            attempts=int(d.get("attempts", 0)),
            backoff_until=float(d.get("backoff_until", 0.0)),
        )


@dataclass
class PodState:
    """Sandbox, network, volumes and containers of one pod."""

    uid: str
    namespace: str
    name: str
    sandbox: Sandbox | None = None
    pod_ip: str = ""
    resolv_conf: str = ""
    network_ready: bool = False
    volumes: dict[str, tuple[str, bool]] = field(default_factory=dict)  # name -> (host path, read only)
    volumes_ready: bool = False
    start_time: float = 0.0
    containers: dict[str, ContainerState] = field(default_factory=dict)
    ready_since: float = 0.0
    network_released: bool = False  # terminal pods give their sandbox and IP back

    def to_dict(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "namespace": self.namespace,
            "name": self.name,
            "sandbox": self.sandbox.to_dict() if self.sandbox else None,
            "pod_ip": self.pod_ip,
            "resolv_conf": self.resolv_conf,
            "network_ready": self.network_ready,
            "volumes": {k: list(v) for k, v in self.volumes.items()},
            "volumes_ready": self.volumes_ready,
            "start_time": self.start_time,
            "network_released": self.network_released,
            "containers": {k: c.to_dict() for k, c in self.containers.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PodState:
        return cls(
            uid=d["uid"],
            namespace=d["namespace"],
            name=d["name"],
            sandbox=Sandbox.from_dict(d["sandbox"]) if d.get("sandbox") else None,
            pod_ip=d.get("pod_ip", ""),
            resolv_conf=d.get("resolv_conf", ""),
            network_ready=bool(d.get("network_ready", False)),
            volumes={k: (v[0], bool(v[1])) for k, v in (d.get("volumes") or {}).items()},
            volumes_ready=bool(d.get("volumes_ready", False)),
            start_time=float(d.get("start_time", 0.0)),
            network_released=bool(d.get("network_released", False)),
            containers={k: ContainerState.from_dict(c) for k, c in (d.get("containers") or {}).items()},
        )


def state_path(pod_dir: str) -> str:
    return os.path.join(pod_dir, "state.json")


def save(pod_dir: str, st: PodState) -> None:
    os.makedirs(pod_dir, exist_ok=True)
    tmp = state_path(pod_dir) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(st.to_dict(), f)
    os.replace(tmp, state_path(pod_dir))


def load(pod_dir: str) -> PodState | None:
    try:
        with open(state_path(pod_dir)) as f:
            return PodState.from_dict(json.load(f))
    except (OSError, ValueError, KeyError, TypeError):
        return None
