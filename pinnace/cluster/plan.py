"""Which processes a local cluster runs, with their flags, namespaces and certificates."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from pinnace.cluster.lab import control_ns, node_ns
from pinnace.cluster.layout import (
    CLUSTER_CIDR,
    CONTROL_PLANE_IP,
    NODE_AGENT_PORT,
    PEER_PORT,
    SERVICE_CIDR,
    SLA_PORT,
    STORE_PORT,
    ClusterSpec,
    node_cgroup_root,
    node_ip,
)


@dataclass
class Component:
    """One supervised process."""

    name: str
    argv: list[str]
    netns: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def command(self) -> list[str]:
        # nsenter joins only the network namespace; `ip netns exec` would also give the process a
        # private mount namespace, hiding the pod namespaces and volume mounts the agents share.
        if self.netns:
            return ["nsenter", f"--net=/run/netns/{self.netns}", "--", *self.argv]
        return list(self.argv)


def _tls_flags(spec: ClusterSpec, name: str) -> list[str]:
    return ["--tls-dir", str(spec.pki_dir), "--tls-name", name] if spec.tls else []


def _common(spec: ClusterSpec, name: str) -> list[str]:
    return [*_tls_flags(spec, name), "--log-format", "json"]


def components(spec: ClusterSpec) -> list[Component]:
    """Every process of the cluster, in start order: stores, control plane, then each node's agents."""
    py = sys.executable
    store = ",".join(spec.store_endpoints())
    out: list[Component] = []
    cp = control_ns(spec)
    peers = ",".join(f"{i + 1}={CONTROL_PLANE_IP}:{PEER_PORT + i}" for i in range(spec.store_replicas))
    for i in range(spec.store_replicas):
        argv = [
            py, "-m", "services.store", "--id", str(i + 1),
            "--listen", f"{CONTROL_PLANE_IP}:{STORE_PORT + i}",
            "--data-dir", str(spec.root / f"store-{i + 1}"),
            "--service-cidr", SERVICE_CIDR,
            # Generous per-client limits: far above what a component needs, low enough that one
            # runaway client cannot starve the others.
            "--max-requests-per-second", "3000", "--max-watchers-per-client", "500",
        ]  # fmt: skip
        if spec.store_replicas > 1:
            argv += ["--peers", peers, "--peer-listen", f"{CONTROL_PLANE_IP}:{PEER_PORT + i}"]
        out.append(Component(f"store-{i + 1}", argv + _common(spec, "store"), cp))
    out.append(
        Component(
            "scheduler",
            [py, "-m", "services.scheduler", "--store", store, *_common(spec, "scheduler")],
            cp,
        )
    )
    out.append(
        Component(
            "controllers",
            [
                py,
                "-m",
                "services.controllers",
                "--store",
                store,
                "--cluster-cidr",
                CLUSTER_CIDR,
                "--node-grace-period",
                str(spec.node_grace_period),
                "--eviction-timeout",
                str(spec.eviction_timeout),
                *_common(spec, "controllers"),
            ],
            cp,
        )
    )
    out.append(
        Component(
            "sla-controller",
            [
                py,
                "-m",
                "services.sla",
                "--store",
                store,
                "--listen",
                f"{CONTROL_PLANE_IP}:{SLA_PORT}",
                *_common(spec, "controllers"),
            ],
            cp,
        )
    )
    for i, node in enumerate(spec.node_names):
        ns = node_ns(spec, node)
        run_dir = f"{spec.run_dir}/{node}"
        data_dir = str(spec.root / "nodes" / node)
        ident = f"node-{node}"
        base = ["--node-name", node, "--store", store, "--run-dir", run_dir, "--data-dir", data_dir]
        out.append(
            Component(
                f"{node}/netagent",
                [
                    py,
                    "-m",
                    "services.netagent",
                    *base,
                    "--backend",
                    spec.backend,
                    "--node-ip",
                    node_ip(i),
                    "--service-cidr",
                    SERVICE_CIDR,
                    "--cluster-cidr",
                    CLUSTER_CIDR,
                    *_common(spec, ident),
                ],
                ns,
            )
        )
        out.append(
            Component(
                f"{node}/volagent",
                [
                    py,
                    "-m",
                    "services.volagent",
                    *base,
                    "--provision-dir",
                    str(spec.root / "volumes"),
                    *_common(spec, ident),
                ],
                ns,
            )
        )
        out.append(
            Component(
                f"{node}/nodeagent",
                [
                    py,
                    "-m",
                    "services.nodeagent",
                    *base,
                    "--runtime",
                    spec.runtime,
                    "--address",
                    node_ip(i),
                    "--port",
                    str(NODE_AGENT_PORT),
                    # cgroups are host-wide: another lab's node of the same name must not see (and
                    # collect as orphans) this lab's pods
                    "--cgroup-root",
                    node_cgroup_root(spec.prefix, node),
                    *_common(spec, ident),
                ],
                ns,
            )
        )
        out.append(
            Component(
                f"{node}/slaprobe",
                [py, "-m", "services.sla.prober", "--node-name", node, "--store", store, *_common(spec, ident)],
                ns,
            )
        )
    return out
