"""Cgroup layout and limits against fake v1 and v2 hierarchies in a temporary directory."""

from __future__ import annotations

from pathlib import Path

from services.nodeagent.cgroups import Cgroups


def test_v1_layout_limits_and_oom(tmp_path: Path) -> None:
    for c in ("memory", "cpu", "pids"):
        (tmp_path / c).mkdir()
    cg = Cgroups("n1", mount=str(tmp_path))
    assert cg.version == 1
    procs = cg.create_container("uid1", "web", 64 << 20, 250)
    assert len(procs) == 3
    mem = tmp_path / "memory" / "pinnace" / "n1" / "poduid1" / "web"
    assert (mem / "memory.limit_in_bytes").read_text() == str(64 << 20)
    cpu = tmp_path / "cpu" / "pinnace" / "n1" / "poduid1" / "web"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "25000"
    assert cg.pod_uids() == {"uid1"}
    assert not cg.oom_killed("uid1", "web")
    (mem / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert cg.oom_killed("uid1", "web")
    assert cg.container_names("uid1") == ["web"]


def test_v2_layout(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    cg = Cgroups("n1", mount=str(tmp_path))
    assert cg.version == 2
    procs = cg.create_container("uid1", "web", 1 << 20, 1500)
    d = tmp_path / "pinnace.slice" / "n1" / "poduid1" / "web"
    assert procs == [str(d / "cgroup.procs")]
    assert (d / "memory.max").read_text() == str(1 << 20)
    assert (d / "cpu.max").read_text() == "150000 100000"
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert cg.oom_killed("uid1", "web")


def test_pod_level_limits(tmp_path: Path) -> None:
    for c in ("memory", "cpu", "pids"):
        (tmp_path / c).mkdir()
    cg = Cgroups("n1", mount=str(tmp_path))
    cg.set_pod_limits("uid1", 96 << 20, 1500)
    assert (tmp_path / "memory/pinnace/n1/poduid1/memory.limit_in_bytes").read_text() == str(96 << 20)
    assert (tmp_path / "cpu/pinnace/n1/poduid1/cpu.cfs_quota_us").read_text() == "150000"


def test_pod_limit_sum() -> None:
    from pinnace.api import pod_pb2
    from services.nodeagent.podworker import pod_limit

    pod = pod_pb2.Pod()
    for name, mem in (("a", "64Mi"), ("b", "32Mi")):
        pod.spec.containers.add(name=name).resources.limits["memory"].value = mem
    init = pod.spec.init_containers.add(name="i")
    init.resources.limits["memory"].value = "128Mi"
    assert pod_limit(pod, "memory") == 128 << 20  # the init container needs more than the sum
    init.resources.limits["memory"].value = "16Mi"
    assert pod_limit(pod, "memory") == 96 << 20
    assert pod_limit(pod, "cpu") is None
