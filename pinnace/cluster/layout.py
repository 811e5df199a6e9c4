"""Where a local cluster keeps its files, and the plan (which processes, where) it was started with."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_DATA_DIR = "/var/lib/pinnace"
DEFAULT_RUN_DIR = "/run/pinnace"
UNDERLAY_PREFIX = "10.254.0"
HOST_IP = f"{UNDERLAY_PREFIX}.1"
CONTROL_PLANE_IP = f"{UNDERLAY_PREFIX}.2"
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
STORE_PORT = 7000
PEER_PORT = 7100
NODE_AGENT_PORT = 10250
SLA_PORT = 7300


def node_cgroup_root(prefix: str, node: str) -> str:
    """A node agent's cgroup path under each controller: pinnace/<node> for the default lab,
    pinnace-<prefix>/<node> for others (cgroups are host-wide and node names repeat across labs)."""
    return f"pinnace/{node}" if prefix == "pinnace" else f"pinnace-{prefix}/{node}"


def node_ip(index: int) -> str:
    """Underlay address of node number index (0-based)."""
    return f"{UNDERLAY_PREFIX}.{10 + index}"


@dataclass
class ClusterSpec:
    """What `pinnace up` was asked for; saved so that down/status know what exists."""

    data_dir: str = DEFAULT_DATA_DIR
    run_dir: str = DEFAULT_RUN_DIR
    nodes: int = 1
    store_replicas: int = 1
    runtime: str = "host"
    backend: str = "vxlan"
    tls: bool = True
    node_grace_period: int = 40
    eviction_timeout: int = 300
    node_names: list[str] = field(default_factory=list)
    # Namespace names start with this; tests use their own prefix so they never touch a user's cluster.
    prefix: str = "pinnace"
    # Give the host a veth into the lab and routes for the pod and service ranges (off in tests:
    # tests never add host routes; they run the CLI inside the control-plane namespace instead).
    host_access: bool = True

    def __post_init__(self) -> None:
        if not self.node_names:
            self.node_names = [f"node{i + 1}" for i in range(self.nodes)]

    @property
    def root(self) -> Path:
        return Path(self.data_dir)

    @property
    def pki_dir(self) -> Path:
        return self.root / "pki"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def spec_file(self) -> Path:
        return self.root / "cluster.json"

    @property
    def status_file(self) -> Path:
        return self.root / "status.json"

    @property
    def supervisor_pid_file(self) -> Path:
        return self.root / "supervisor.pid"

    def store_endpoints(self) -> list[str]:
        return [f"{CONTROL_PLANE_IP}:{STORE_PORT + i}" for i in range(self.store_replicas)]

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.spec_file.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, data_dir: str) -> ClusterSpec:
        path = Path(data_dir) / "cluster.json"
        return cls(**json.loads(path.read_text()))
