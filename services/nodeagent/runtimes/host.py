"""The `host` runtime: containers are host processes (like Nomad's raw_exec) run through a shim.

Each container attempt is started by shim.py, which joins the pod's named network namespace, makes a
private mount namespace with the volumes bound at their mountPaths, moves the process into its
cgroups and keeps its logs and exit status on disk, so the agent can restart and adopt it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

from services.nodeagent import fdwait, logfiles, mounts, netns
from services.nodeagent.cgroups import Cgroups
from services.nodeagent.runtimes.base import (
    ContainerConfig,
    ContainerExit,
    ContainerRecord,
    ExecSession,
    Runtime,
    Sandbox,
    StartError,
)
from services.nodeagent.runtimes.execproc import ProcessExec

_JOIN_CGROUPS = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do { echo $$ > "$1"; } 2>/dev/null; shift; n=$((n-1)); done; exec "$@"'
)
SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim.py")


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            data: dict[str, Any] = json.load(f)
            return data
    except (OSError, ValueError):
        return None


def pid_alive(pid: int, marker: str = "", start: int = 0) -> bool:
    """True if pid runs (not a zombie), started at `start` (clock ticks, when given) and its command
    line contains marker (when given)."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rfind(b")") + 2 :].split()
        if fields[0] in (b"Z", b"X"):
            return False
        if start and int(fields[19]) != start:
            return False
        if marker:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return marker.encode() in f.read()
        return True
    except OSError:
        return False


class HostRuntime(Runtime):
    """Processes on the host file system, in the pod's netns and a private mount namespace."""

    name = "host"

    def __init__(self, data_dir: str, cgroups: Cgroups, log_max_bytes: int = 10 << 20, log_max_files: int = 3) -> None:
        self.data_dir = data_dir
        self.cgroups = cgroups
        self.log_max_bytes = log_max_bytes
        self.log_max_files = log_max_files
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._server: subprocess.Popen[bytes] | None = None
        self._server_sock = os.path.join(data_dir, "shim.sock")

    async def start(self) -> None:
        """Start the shim fork server (falls back to one interpreter per container if it fails)."""
        os.makedirs(self.data_dir, exist_ok=True)
        pidfile = os.path.join(self.data_dir, "shim-server.pid")
        with contextlib.suppress(OSError, ValueError), open(pidfile) as f:
            old = int(f.read().strip() or 0)
            if pid_alive(old, "--serve"):
                os.kill(old, signal.SIGTERM)
        with open(os.path.join(self.data_dir, "shim-server.log"), "ab") as errlog:
            self._server = subprocess.Popen(
                [sys.executable, "-S", "-I", SHIM, "--serve", self._server_sock],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errlog,
                start_new_session=True,
                close_fds=True,
            )
        assert self._server.stdout is not None
        try:
            line = await asyncio.wait_for(_read_line(self._server.stdout.fileno()), timeout=15)
        except TimeoutError:
            line = b""
        self._server.stdout.close()
        if line != b"ready":
            self._server.kill()
            self._server = None
            return
        with open(pidfile, "w") as f:
            f.write(str(self._server.pid))

    async def health(self) -> str:
        if self._server is None or self._server.poll() is not None:
            self._server = None  # (re)start the shim server; meanwhile shims start as fresh interpreters
            with contextlib.suppress(Exception):
                await self.start()
        return ""

    async def close(self) -> None:
        if self._server is not None:
            self._server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self._server.wait, 5)
            self._server = None
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.data_dir, "shim-server.pid"))

    async def _spawn_shim(self, spec_path: str, cdir: str) -> bytes:
        """Start a shim for spec_path; returns its first output line (JSON)."""
        if self._server is not None and self._server.poll() is None:
            try:
                reader, writer = await asyncio.open_unix_connection(self._server_sock)
                try:
                    writer.write(spec_path.encode() + b"\n")
                    await writer.drain()
                    return (await asyncio.wait_for(reader.readline(), timeout=30)).strip()
                finally:
                    writer.close()
            except OSError:
                pass  # fall back to a fresh interpreter
        with open(os.path.join(cdir, "shim.log"), "ab") as errlog:
            proc = subprocess.Popen(
                [sys.executable, "-S", "-I", SHIM, spec_path],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=errlog,
                start_new_session=True,
                close_fds=True,
            )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(_read_line(proc.stdout.fileno()), timeout=30)
        finally:
            proc.stdout.close()
        self._procs[proc.pid] = proc
        return line

    def version(self) -> str:
        return f"host://python{sys.version_info.major}.{sys.version_info.minor}"

    def pod_dir(self, pod_uid: str) -> str:
        return os.path.join(self.data_dir, "pods", pod_uid)

    # -- sandboxes ---------------------------------------------------------------------------
    async def create_sandbox(self, pod_uid: str, pod_name: str, namespace: str, host_network: bool = False) -> Sandbox:
        if host_network:
            return Sandbox(pod_uid=pod_uid, id="host", netns_path="")
        path = await netns.ensure(pod_uid)
        return Sandbox(pod_uid=pod_uid, id=netns.netns_name(pod_uid), netns_path=path)

    async def sandbox_alive(self, sb: Sandbox) -> bool:
        return sb.netns_path == "" or os.path.exists(sb.netns_path)

    async def remove_sandbox(self, sb: Sandbox) -> None:
        if sb.netns_path:
            await netns.delete(sb.pod_uid)

    # -- containers --------------------------------------------------------------------------
    async def start_container(self, sb: Sandbox, pod_uid: str, cfg: ContainerConfig) -> ContainerRecord:
        cdir = os.path.join(self.pod_dir(pod_uid), "containers", f"{cfg.name}-{cfg.attempt}")
        if os.path.isdir(cdir):
            shutil.rmtree(cdir, ignore_errors=True)
        os.makedirs(cdir, exist_ok=True)
        os.makedirs(cfg.log_dir, exist_ok=True)
        log_path = os.path.join(cfg.log_dir, f"{cfg.attempt}.log")
        for old in logfiles.files_of(log_path):
            os.unlink(old)
        self._prune(pod_uid, cfg)
        self.cgroups.set_pod_limits(pod_uid, cfg.pod_memory_limit, cfg.pod_cpu_millis)
        procs = self.cgroups.create_container(pod_uid, cfg.name, cfg.memory_limit, cfg.cpu_millis)
        mnts = [{"source": m.source, "target": m.target, "read_only": m.read_only} for m in cfg.mounts]
        if cfg.resolv_conf:
            mnts.append({"source": cfg.resolv_conf, "target": "/etc/resolv.conf", "read_only": True})
        spec = {
            "netns": sb.netns_path,
            "hostname": cfg.hostname if sb.netns_path else "",
            "mounts": mnts,
            "cgroups": procs,
            "argv": cfg.argv,
            "env": cfg.env,
            "cwd": cfg.cwd,
            "log_path": log_path,
            "log_max_bytes": self.log_max_bytes,
            "log_max_files": self.log_max_files,
            "pid_path": os.path.join(cdir, "pid.json"),
            "exit_path": os.path.join(cdir, "exit.json"),
            "created_path": os.path.join(self.pod_dir(pod_uid), "created-mountpoints"),
        }
        spec_path = os.path.join(cdir, "spec.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        line = await self._spawn_shim(spec_path, cdir)
        try:
            info = json.loads(line or b"{}")
        except ValueError:
            info = {}
        if "pid" not in info:
            raise StartError(info.get("error") or f"shim failed to start {cfg.argv!r} (see {cdir}/shim.log)")
        return ContainerRecord(
            name=cfg.name,
            id=f"host://{pod_uid}/{cfg.name}/{cfg.attempt}",
            attempt=cfg.attempt,
            pid=int(info["pid"]),
            shim_pid=int(info["shim_pid"]),
            shim_start=int(info.get("shim_start", 0)),
            started_at=float(info["started_at"]),
            dir=cdir,
            log_path=log_path,
            image=cfg.image,
        )

    def _prune(self, pod_uid: str, cfg: ContainerConfig) -> None:
        """Keep only the previous attempt's directory and logs (for lastState and `logs --previous`)."""
        keep = cfg.attempt - 1
        cdirs = os.path.join(self.pod_dir(pod_uid), "containers")
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(cdirs):
                base, _, num = name.rpartition("-")
                if base == cfg.name and num.isdigit() and int(num) < keep:
                    shutil.rmtree(os.path.join(cdirs, name), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(cfg.log_dir):
                num = name.split(".", 1)[0]
                if num.isdigit() and int(num) < keep:
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(cfg.log_dir, name))

    def _shim_alive(self, rec: ContainerRecord) -> bool:
        if rec.shim_start:
            return pid_alive(rec.shim_pid, "shim.py", rec.shim_start)
        return pid_alive(rec.shim_pid, os.path.join(rec.dir, "spec.json"))

    def _reap(self, pid: int) -> None:
        proc = self._procs.pop(pid, None)
        if proc is not None:
            with contextlib.suppress(ChildProcessError, OSError):
                proc.wait(timeout=0)
            return
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)

    async def container_exit(self, rec: ContainerRecord) -> ContainerExit | None:
        data = _read_json(os.path.join(rec.dir, "exit.json"))
        if data is None:
            if self._shim_alive(rec):
                return None
            self._reap(rec.shim_pid)
            data = _read_json(os.path.join(rec.dir, "exit.json"))
            if data is None:
                return ContainerExit(137, 9, "Unknown", "the container's shim disappeared", 0.0)
        code = int(data.get("exit_code", 0))
        sig = int(data.get("signal", 0))
        if data.get("error"):
            return ContainerExit(code, 0, "StartError", str(data["error"]), float(data.get("finished_at", 0)))
        pod_uid = rec.id.split("/")[2] if rec.id.startswith("host://") else ""
        if sig == signal.SIGKILL and pod_uid and self.cgroups.oom_killed(pod_uid, rec.name):
            reason = "OOMKilled"
        else:
            reason = "Completed" if code == 0 else "Error"
        return ContainerExit(code, sig, reason, "", float(data.get("finished_at", 0)))

    async def wait_container(self, rec: ContainerRecord) -> None:
        if not self._shim_alive(rec):
            self._reap(rec.shim_pid)
            return
        try:
            fd = os.pidfd_open(rec.shim_pid)
        except OSError:
            return
        try:
            await fdwait.readable(fd)
        finally:
            os.close(fd)
        self._reap(rec.shim_pid)

    async def signal_container(self, rec: ContainerRecord, sig: int) -> None:
        if pid_alive(rec.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(rec.pid, sig)
            with contextlib.suppress(ProcessLookupError):
                os.kill(rec.pid, sig)
        if sig == signal.SIGKILL:
            pod_uid = rec.id.split("/")[2]
            if self._shim_alive(rec):
                self.cgroups.kill_all(pod_uid, rec.name)

    async def remove_container(self, rec: ContainerRecord) -> None:
        pod_uid = rec.id.split("/")[2]
        if not self.cgroups.pids(pod_uid, rec.name):
            self.cgroups.remove_container(pod_uid, rec.name)

    # -- exec and logs -----------------------------------------------------------------------
    async def exec(self, sb: Sandbox, rec: ContainerRecord, argv: list[str], tty: bool, stdin: bool) -> ExecSession:
        if not pid_alive(rec.pid):
            raise StartError(f"container {rec.name} is not running")
        spec = _read_json(os.path.join(rec.dir, "spec.json")) or {}
        env = dict(spec.get("env") or {})
        cmd = ["nsenter", "-t", str(rec.pid), "-m"] + (["-n", "-u"] if sb.netns_path else [])
        if spec.get("cwd"):
            cmd.append(f"--wd={spec['cwd']}")
        cmd += ["--", *argv]
        # like the kubelet: exec'd processes are accounted to (and limited by) the container's cgroup;
        # a tiny sh joins it before exec'ing nsenter, so nothing runs outside it
        pod_uid = rec.id.split("/")[2]
        procs = [os.path.join(d, "cgroup.procs") for d in self.cgroups.container_dirs(pod_uid, rec.name)]
        procs = [p for p in procs if os.path.exists(p)]
        if procs:
            cmd = ["sh", "-c", _JOIN_CGROUPS, "sh", str(len(procs)), *procs, *cmd]
        return await ProcessExec.start(cmd, env, tty=tty, stdin=stdin)

    def logs(
        self, rec: ContainerRecord, follow: bool, tail_lines: int, timestamps: bool, alive: Any
    ) -> AsyncIterator[bytes]:
        return logfiles.stream(rec.log_path, follow, tail_lines, timestamps, alive)

    # -- garbage collection ------------------------------------------------------------------
    async def remove_untracked(self, pod_uid: str, sb: Sandbox | None, keep: set[str]) -> list[str]:
        removed = []
        cdir = os.path.join(self.pod_dir(pod_uid), "containers")
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(cdir):
                base, _, num = name.rpartition("-")
                if not num.isdigit() or f"host://{pod_uid}/{base}/{num}" in keep:
                    continue
                info = _read_json(os.path.join(cdir, name, "pid.json")) or {}
                spid, start = int(info.get("shim_pid", 0)), int(info.get("shim_start", 0))
                if spid and pid_alive(spid, "shim.py", start):
                    with contextlib.suppress(OSError):
                        os.killpg(int(info.get("pid", 0)), signal.SIGKILL)
                    removed.append(f"host://{pod_uid}/{base}/{num}")
        return removed

    async def list_sandbox_uids(self) -> set[str]:
        uids = set(self.cgroups.pod_uids())
        with contextlib.suppress(FileNotFoundError):
            uids.update(os.listdir(os.path.join(self.data_dir, "pods")))
        return uids

    async def cleanup_pod(self, pod_uid: str) -> None:
        cdir = os.path.join(self.pod_dir(pod_uid), "containers")
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(cdir):
                pid = _read_json(os.path.join(cdir, name, "pid.json")) or {}
                cpid, spid = int(pid.get("pid", 0)), int(pid.get("shim_pid", 0))
                if pid_alive(cpid):
                    with contextlib.suppress(OSError):
                        os.killpg(cpid, signal.SIGKILL)
                if pid_alive(spid, "shim.py", int(pid.get("shim_start", 0))):
                    with contextlib.suppress(OSError):
                        os.kill(spid, signal.SIGKILL)
        await asyncio.to_thread(self.cgroups.remove_pod, pod_uid)
        await netns.delete(pod_uid)
        mounts.remove_created_mountpoints(os.path.join(self.pod_dir(pod_uid), "created-mountpoints"))


async def _read_line(fd: int) -> bytes:
    """Read one line from a pipe without blocking the event loop."""
    os.set_blocking(fd, False)
    buf = b""
    while b"\n" not in buf:
        await fdwait.readable(fd)
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            continue
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n", 1)[0]
