"""cgroups for pods and containers: v2 (unified) or v1 (memory, cpu, pids hierarchies).

Layout: <controller root>/<root>/pod<uid>/<container>, with <root> = "pinnace/<node>" by default
(v2: "pinnace.slice/<node>"). Limits: memory.max / memory.limit_in_bytes, cpu.max / cfs quota.
OOM kills are read from memory.events (v2) or memory.oom_control (v1).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

CGROUP_MOUNT = "/sys/fs/cgroup"
CPU_PERIOD_US = 100_000


def detect_version(mount: str = CGROUP_MOUNT) -> int:
    """2 when the cgroup mount is cgroup2 (unified), else 1."""
    return 2 if os.path.exists(os.path.join(mount, "cgroup.controllers")) else 1


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _counter(text: str, key: str) -> int:
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    return 0


class Cgroups:
    """Creates, limits, inspects and removes the pod and container cgroups of one node agent."""

    def __init__(self, node: str, root: str = "", mount: str = CGROUP_MOUNT) -> None:
        self.mount = mount
        self.version = detect_version(mount)
        self.enabled = os.path.isdir(mount) and os.access(mount, os.W_OK)
        if self.version == 2:
            self.root = root or f"pinnace.slice/{node}"
            self.bases = [os.path.join(mount, self.root)]
        else:
            self.root = root or f"pinnace/{node}"
            self.bases = [
                os.path.join(mount, c, self.root)
                for c in ("memory", "cpu", "pids")
                if os.path.isdir(os.path.join(mount, c))
            ]
        self._memory_base = next((b for b in self.bases if self.version == 2 or "/memory/" in b), "")
        self._cpu_base = next((b for b in self.bases if self.version == 2 or "/cpu/" in b), "")

    # -- paths -------------------------------------------------------------------------------
    def pod_dirs(self, pod_uid: str) -> list[str]:
        return [os.path.join(b, f"pod{pod_uid}") for b in self.bases]

    def container_dirs(self, pod_uid: str, name: str) -> list[str]:
        return [os.path.join(d, name) for d in self.pod_dirs(pod_uid)]

    def _mem_dir(self, pod_uid: str, name: str) -> str:
        return os.path.join(self._memory_base, f"pod{pod_uid}", name) if self._memory_base else ""

    def _cpu_dir(self, pod_uid: str, name: str) -> str:
        return os.path.join(self._cpu_base, f"pod{pod_uid}", name) if self._cpu_base else ""

    # -- lifecycle ---------------------------------------------------------------------------
    def _enable_v2_controllers(self, path: str) -> None:
        """Turn on memory/cpu/pids for children along the path from the mount down to `path`."""
        rel = os.path.relpath(path, self.mount)
        cur = self.mount
        for part in rel.split(os.sep):
            available = _read(os.path.join(cur, "cgroup.controllers")).split()
            want = [c for c in ("memory", "cpu", "pids") if c in available]
            enabled = _read(os.path.join(cur, "cgroup.subtree_control")).split()
            for c in want:
                if c not in enabled:
                    with contextlib.suppress(OSError):
                        _write(os.path.join(cur, "cgroup.subtree_control"), f"+{c}")
            cur = os.path.join(cur, part)
            os.makedirs(cur, exist_ok=True)

    def create_container(self, pod_uid: str, name: str, memory_limit: int | None, cpu_millis: int | None) -> list[str]:
        """A fresh cgroup for one container attempt; returns the cgroup.procs files to join."""
        if not self.enabled:
            return []
        self.remove_container(pod_uid, name)
        procs: list[str] = []
        for d in self.container_dirs(pod_uid, name):
            if self.version == 2:
                self._enable_v2_controllers(os.path.dirname(d))
            os.makedirs(d, exist_ok=True)
            procs.append(os.path.join(d, "cgroup.procs"))
        mem = self._mem_dir(pod_uid, name)
        cpu = self._cpu_dir(pod_uid, name)
        if self.version == 2:
            if memory_limit and mem:
                _write(os.path.join(mem, "memory.max"), str(memory_limit))
                with contextlib.suppress(OSError):
                    _write(os.path.join(mem, "memory.swap.max"), "0")
            if cpu_millis and cpu:
                quota = max(1000, cpu_millis * CPU_PERIOD_US // 1000)
                _write(os.path.join(cpu, "cpu.max"), f"{quota} {CPU_PERIOD_US}")
        else:
            if memory_limit and mem:
                _write(os.path.join(mem, "memory.limit_in_bytes"), str(memory_limit))
                with contextlib.suppress(OSError):
                    _write(os.path.join(mem, "memory.memsw.limit_in_bytes"), str(memory_limit))
            if cpu_millis and cpu:
                _write(os.path.join(cpu, "cpu.cfs_period_us"), str(CPU_PERIOD_US))
                quota = max(1000, cpu_millis * CPU_PERIOD_US // 1000)
                _write(os.path.join(cpu, "cpu.cfs_quota_us"), str(quota))
        return procs

    def set_pod_limits(self, pod_uid: str, memory_limit: int | None, cpu_millis: int | None) -> None:
        """Pod-level limits (the sum over the containers, like the kubelet's pod cgroup)."""
        if not self.enabled:
            return
        for d in self.pod_dirs(pod_uid):
            if self.version == 2:
                self._enable_v2_controllers(d)
            os.makedirs(d, exist_ok=True)
        mem = os.path.join(self._memory_base, f"pod{pod_uid}") if self._memory_base else ""
        cpu = os.path.join(self._cpu_base, f"pod{pod_uid}") if self._cpu_base else ""
        with contextlib.suppress(OSError):
            if memory_limit and mem:
                _write(
                    os.path.join(mem, "memory.max" if self.version == 2 else "memory.limit_in_bytes"), str(memory_limit)
                )
            if cpu_millis and cpu:
                quota = max(1000, cpu_millis * CPU_PERIOD_US // 1000)
                if self.version == 2:
                    _write(os.path.join(cpu, "cpu.max"), f"{quota} {CPU_PERIOD_US}")
                else:
                    _write(os.path.join(cpu, "cpu.cfs_period_us"), str(CPU_PERIOD_US))
                    _write(os.path.join(cpu, "cpu.cfs_quota_us"), str(quota))

    def memory_limit(self, pod_uid: str, name: str) -> int | None:
        mem = self._mem_dir(pod_uid, name)
        if not mem:
            return None
        text = _read(os.path.join(mem, "memory.max" if self.version == 2 else "memory.limit_in_bytes")).strip()
        if not text or text == "max":
            return None
        return int(text)

    def oom_killed(self, pod_uid: str, name: str) -> bool:
        mem = self._mem_dir(pod_uid, name)
        if not mem:
            return False
        if self.version == 2:
            return _counter(_read(os.path.join(mem, "memory.events")), "oom_kill") > 0
        return _counter(_read(os.path.join(mem, "memory.oom_control")), "oom_kill") > 0

    def pids(self, pod_uid: str, name: str) -> list[int]:
        out: set[int] = set()
        for d in self.container_dirs(pod_uid, name):
            for line in _read(os.path.join(d, "cgroup.procs")).split():
                out.add(int(line))
        return sorted(out)

    def kill_all(self, pod_uid: str, name: str) -> None:
        """SIGKILL every process left in the container's cgroup."""
        for pid in self.pids(pod_uid, name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove_container(self, pod_uid: str, name: str) -> None:
        for d in self.container_dirs(pod_uid, name):
            if os.path.isdir(d):
                with contextlib.suppress(OSError):
                    os.rmdir(d)

    def remove_pod(self, pod_uid: str) -> bool:
        """Remove the pod's cgroups (killing leftovers); True when nothing is left."""
        ok = True
        for name in self.container_names(pod_uid):
            self.kill_all(pod_uid, name)
        for name in self.container_names(pod_uid):
            for d in self.container_dirs(pod_uid, name):
                for _ in range(50):
                    try:
                        if os.path.isdir(d):
                            os.rmdir(d)
                        break
                    except OSError:
                        time.sleep(0.02)
                else:
                    ok = False
        for d in self.pod_dirs(pod_uid):
            if os.path.isdir(d):
                try:
                    os.rmdir(d)
                except OSError:
                    ok = False
        return ok

    def container_names(self, pod_uid: str) -> list[str]:
        names: set[str] = set()
        for d in self.pod_dirs(pod_uid):
            if os.path.isdir(d):
                names.update(e.name for e in os.scandir(d) if e.is_dir())
        return sorted(names)

    def pod_uids(self) -> set[str]:
        uids: set[str] = set()
        for b in self.bases:
            if os.path.isdir(b):
                uids.update(e.name[3:] for e in os.scandir(b) if e.is_dir() and e.name.startswith("pod"))
        return uids
