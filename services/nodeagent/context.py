"""What every pod worker shares: the store client, runtime, node-local helpers and node settings."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pinnace.client.events import EventRecorder
from services.nodeagent.nodelocal import NetagentClient, VolagentClient
from services.nodeagent.runtimes.base import Runtime


@dataclass
class AgentContext:
    client: Any  # pinnace.client.AsyncClient
    runtime: Runtime
    netagent: NetagentClient
    volagent: VolagentClient
    node_name: str
    host_ip: str
    data_dir: str
    run_dir: str
    backoff_base: float = 10.0
    backoff_max: float = 300.0
    on_running: Callable[[str, float], None] | None = None  # (pod uid, time) hook for metrics
    events: EventRecorder | None = None  # Events about pods, written while started (None = no events)
    extra: dict[str, Any] = field(default_factory=dict)

    def pod_dir(self, uid: str) -> str:
        return os.path.join(self.data_dir, "pods", uid)

    def log_dir(self, uid: str, container: str) -> str:
        return os.path.join(self.pod_dir(uid), "logs", container)
