"""The `docker` runtime: a sandbox container (network mode none) owns the pod's network namespace,
which the netagent wires through /proc/<pid>/ns/net; app containers join it (network mode
container:<sandbox>). Volumes are bind mounts, limits are Docker resources, logs are Docker's.

Everything is labelled pinnace.node=<node> and pinnace.pod-uid=<uid>, so a restarted agent finds
its sandboxes and containers again and removes what belongs to no pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import struct
import tarfile
import threading
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from services.nodeagent.runtimes.base import (
    ContainerConfig,
    ContainerExit,
    ContainerRecord,
    ExecSession,
    Runtime,
    Sandbox,
    StartError,
)

PAUSE_IMAGE = "pinnace/pause:0.1"
DEFAULT_ENV = {"PATH", "HOME"}  # the image defines these for Docker containers


def _parse_time(text: str) -> float:
    if not text or text.startswith("0001-"):
        return 0.0
    # 2024-01-02T03:04:05.123456789Z -> trim nanoseconds for fromisoformat
    main, _, frac = text.rstrip("Z").partition(".")
    frac = (frac + "000000")[:6]
    return datetime.fromisoformat(f"{main}.{frac}+00:00").timestamp()


def _short(uid: str) -> str:
    return uid.replace("-", "")[:12]


def build_pause_tar(busybox: str = "/bin/busybox") -> bytes:
    """A root file system with a static busybox, for `docker import` of the sandbox image."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "proc", "sys", "dev", "etc", "tmp"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for name in ("sh", "sleep"):
            link = tarfile.TarInfo(f"bin/{name}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
    return buf.getvalue()


class DockerRuntime(Runtime):
    """Pods as Docker containers joined to a sandbox container's network namespace."""

    name = "docker"

    def __init__(self, node: str, data_dir: str, sandbox_image: str = PAUSE_IMAGE, log_max_size: str = "10m") -> None:
        self.node = node
        self.data_dir = data_dir
        self.sandbox_image = sandbox_image
        self.log_max_size = log_max_size
        self._client: Any = None
        self._version = "docker"

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("docker runtime not started")
        return self._client

    async def start(self) -> None:
        import docker

        self._client = await asyncio.to_thread(docker.from_env, timeout=60)
        info = await asyncio.to_thread(self._client.version)
        self._version = f"docker://{info.get('Version', '?')}"
        await asyncio.to_thread(self._ensure_pause_image)

    def _ensure_pause_image(self) -> None:
        import docker

        try:
            self.client.images.get(self.sandbox_image)
            return
        except docker.errors.ImageNotFound:
            pass
        if self.sandbox_image != PAUSE_IMAGE:
            self.client.images.pull(self.sandbox_image)
            return
        repo, tag = PAUSE_IMAGE.split(":")
        self.client.api.import_image_from_data(build_pause_tar(), repository=repo, tag=tag)

    async def close(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)
            self._client = None

    def version(self) -> str:
        return self._version

    async def health(self) -> str:
        try:
            await asyncio.to_thread(self.client.ping)
            return ""
        except Exception as e:
            return f"dockerd does not answer: {e}"

    def _labels(self, pod_uid: str, role: str, **extra: str) -> dict[str, str]:
        return {"pinnace.node": self.node, "pinnace.pod-uid": pod_uid, "pinnace.role": role, **extra}

    # -- sandboxes ---------------------------------------------------------------------------
    async def create_sandbox(self, pod_uid: str, pod_name: str, namespace: str, host_network: bool = False) -> Sandbox:
        return await asyncio.to_thread(self._create_sandbox, pod_uid, pod_name, namespace, host_network)

    def _create_sandbox(self, pod_uid: str, pod_name: str, namespace: str, host_network: bool) -> Sandbox:
        import docker

        name = f"pinnace_{self.node}_{namespace}_{pod_name}_{_short(pod_uid)}_sandbox"
        try:
            c = self.client.containers.get(name)
            if c.status != "running":
                c.remove(force=True)
                raise docker.errors.NotFound("stale sandbox")
        except docker.errors.NotFound:
            c = self.client.containers.run(
                self.sandbox_image,
                ["/bin/busybox", "sleep", "2147483647"],
                name=name,
                detach=True,
                network_mode="host" if host_network else "none",
                hostname=None if host_network else pod_name[:63],
                labels=self._labels(
                    pod_uid, "sandbox", **{"pinnace.pod-name": pod_name, "pinnace.namespace": namespace}
                ),
                init=False,
                stop_signal="SIGKILL",
            )
        c.reload()
        pid = int(c.attrs["State"]["Pid"])
        return Sandbox(pod_uid=pod_uid, id=c.id, netns_path="" if host_network else f"/proc/{pid}/ns/net", pid=pid)

    async def sandbox_alive(self, sb: Sandbox) -> bool:
        def check() -> bool:
            try:
                c = self.client.containers.get(sb.id)
                return bool(c.status == "running" and int(c.attrs["State"]["Pid"]) == sb.pid)
            except Exception:
                return False

        return await asyncio.to_thread(check)

    async def remove_sandbox(self, sb: Sandbox) -> None:
        def rm() -> None:
            with contextlib.suppress(Exception):
                self.client.containers.get(sb.id).remove(force=True)

        await asyncio.to_thread(rm)

    # -- containers --------------------------------------------------------------------------
    async def start_container(self, sb: Sandbox, pod_uid: str, cfg: ContainerConfig) -> ContainerRecord:
        return await asyncio.to_thread(self._start_container, sb, pod_uid, cfg)

    def _ensure_image(self, image: str) -> None:
        import docker

        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound:
            try:
                self.client.images.pull(image)
            except Exception as e:
                raise StartError(f"ErrImagePull: image {image!r} is not present and cannot be pulled: {e}") from e

    def _start_container(self, sb: Sandbox, pod_uid: str, cfg: ContainerConfig) -> ContainerRecord:
        import docker

        self._ensure_image(cfg.image)
        pod_tag = sb.id[:12]
        name = f"pinnace_{self.node}_{_short(pod_uid)}_{cfg.name}_{cfg.attempt}"
        with contextlib.suppress(docker.errors.NotFound):
            self.client.containers.get(name).remove(force=True)
        env = {k: v for k, v in cfg.env.items() if k not in DEFAULT_ENV}
        binds = {m.source: {"bind": m.target, "mode": "ro" if m.read_only else "rw"} for m in cfg.mounts}
        if cfg.resolv_conf:
            binds[cfg.resolv_conf] = {"bind": "/etc/resolv.conf", "mode": "ro"}
        kwargs: dict[str, Any] = {
            "name": name,
            "detach": True,
            "network_mode": f"container:{sb.id}",
            "environment": env,
            "volumes": binds,
            "labels": self._labels(
                pod_uid,
                "container",
                **{"pinnace.container": cfg.name, "pinnace.attempt": str(cfg.attempt), "pinnace.sandbox": pod_tag},
            ),
            "tty": cfg.tty,
            "log_config": {"type": "json-file", "config": {"max-size": self.log_max_size, "max-file": "3"}},
        }
        if cfg.command:
            kwargs["entrypoint"] = cfg.command
        if cfg.args:
            kwargs["command"] = cfg.args
        if cfg.cwd:
            kwargs["working_dir"] = cfg.cwd
        if cfg.memory_limit:
            kwargs["mem_limit"] = cfg.memory_limit
            kwargs["memswap_limit"] = cfg.memory_limit
        if cfg.cpu_millis:
            kwargs["nano_cpus"] = cfg.cpu_millis * 1_000_000
        try:
            c = self.client.containers.create(cfg.image, **kwargs)
            c.start()
        except docker.errors.APIError as e:
            with contextlib.suppress(Exception):
                self.client.containers.get(name).remove(force=True)
            raise StartError(str(e.explanation or e)) from e
        c.reload()
        state = c.attrs["State"]
        return ContainerRecord(
            name=cfg.name,
            id=f"docker://{c.id}",
            attempt=cfg.attempt,
            pid=int(state.get("Pid") or 0),
            started_at=_parse_time(state.get("StartedAt", "")),
            image=cfg.image,
        )

    def _get(self, rec: ContainerRecord) -> Any:
        return self.client.containers.get(rec.id.removeprefix("docker://"))

    async def container_exit(self, rec: ContainerRecord) -> ContainerExit | None:
        def inspect() -> ContainerExit | None:
            import docker

            try:
                c = self._get(rec)
            except docker.errors.NotFound:
                return ContainerExit(137, 9, "Unknown", "the container is gone", 0.0)
            st = c.attrs["State"]
            if st.get("Running") or st.get("Status") in ("created", "restarting"):
                return None
            code = int(st.get("ExitCode", 0))
            if st.get("OOMKilled"):
                reason = "OOMKilled"
            elif st.get("Error"):
                reason = "StartError"
            else:
                reason = "Completed" if code == 0 else "Error"
            sig = code - 128 if code > 128 else 0
            return ContainerExit(code, sig, reason, st.get("Error", ""), _parse_time(st.get("FinishedAt", "")))

        return await asyncio.to_thread(inspect)

    async def wait_container(self, rec: ContainerRecord) -> None:
        while await self.container_exit(rec) is None:
            await asyncio.sleep(0.5)

    async def signal_container(self, rec: ContainerRecord, sig: int) -> None:
        def kill() -> None:
            with contextlib.suppress(Exception):
                self._get(rec).kill(signal=int(sig))

        await asyncio.to_thread(kill)

    async def remove_container(self, rec: ContainerRecord) -> None:
        def rm() -> None:
            with contextlib.suppress(Exception):
                self._get(rec).remove(force=True)

        if rec.id.startswith("docker://"):
            await asyncio.to_thread(rm)

    # -- exec and logs -----------------------------------------------------------------------
    async def exec(self, sb: Sandbox, rec: ContainerRecord, argv: list[str], tty: bool, stdin: bool) -> ExecSession:
        def create() -> tuple[str, socket.socket]:
            cid = rec.id.removeprefix("docker://")
            ex = self.client.api.exec_create(cid, argv, stdin=stdin, tty=tty, stdout=True, stderr=True)
            sock = self.client.api.exec_start(ex["Id"], socket=True, tty=tty)
            raw = getattr(sock, "_sock", sock)
            return ex["Id"], raw

        try:
            exec_id, sock = await asyncio.to_thread(create)
        except Exception as e:
            raise StartError(str(e)) from e
        return DockerExec(self.client.api, exec_id, sock, tty)

    async def logs(
        self, rec: ContainerRecord, follow: bool, tail_lines: int, timestamps: bool, alive: Any
    ) -> AsyncIterator[bytes]:
        tail: Any = tail_lines if tail_lines >= 0 else "all"
        c = await asyncio.to_thread(self._get, rec)
        if not follow:
            data = await asyncio.to_thread(c.logs, stdout=True, stderr=True, tail=tail, timestamps=timestamps)
            if data:
                yield data
            return
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        stop = threading.Event()

        def pump() -> None:
            try:
                for chunk in c.logs(
                    stdout=True, stderr=True, tail=tail, timestamps=timestamps, stream=True, follow=True
                ):
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        t = threading.Thread(target=pump, daemon=True)
        t.start()
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield item
        finally:
            stop.set()

    # -- garbage collection ------------------------------------------------------------------
    async def remove_untracked(self, pod_uid: str, sb: Sandbox | None, keep: set[str]) -> list[str]:
        def rm() -> list[str]:
            out = []
            cs = self.client.containers.list(
                all=True, filters={"label": [f"pinnace.node={self.node}", f"pinnace.pod-uid={pod_uid}"]}
            )
            for c in cs:
                role = c.labels.get("pinnace.role")
                if role == "sandbox":
                    if sb is not None and c.id != sb.id:
                        c.remove(force=True)
                        out.append(c.id)
                elif f"docker://{c.id}" not in keep:
                    c.remove(force=True)
                    out.append(f"docker://{c.id}")
            return out

        return await asyncio.to_thread(rm)

    async def list_sandbox_uids(self) -> set[str]:
        def ls() -> set[str]:
            cs = self.client.containers.list(all=True, filters={"label": f"pinnace.node={self.node}"})
            return {c.labels.get("pinnace.pod-uid", "") for c in cs} - {""}

        return await asyncio.to_thread(ls)

    async def cleanup_pod(self, pod_uid: str) -> None:
        def rm() -> None:
            cs = self.client.containers.list(
                all=True, filters={"label": [f"pinnace.node={self.node}", f"pinnace.pod-uid={pod_uid}"]}
            )
            for c in sorted(cs, key=lambda c: c.labels.get("pinnace.role") == "sandbox"):
                with contextlib.suppress(Exception):
                    c.remove(force=True)

        await asyncio.to_thread(rm)


class DockerExec(ExecSession):
    """An exec over Docker's hijacked socket; without a TTY the stream is multiplexed (8-byte headers)."""

    def __init__(self, api: Any, exec_id: str, sock: socket.socket, tty: bool) -> None:
        self.api = api
        self.exec_id = exec_id
        self.sock = sock
        self.tty = tty
        sock.setblocking(True)

    async def write_stdin(self, data: bytes) -> None:
        await asyncio.to_thread(self.sock.sendall, data)

    async def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    async def resize(self, rows: int, cols: int) -> None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.api.exec_resize, self.exec_id, height=rows, width=cols)

    async def output(self) -> AsyncIterator[tuple[str, bytes]]:
        buf = b""
        while True:
            chunk = await asyncio.to_thread(self._recv)
            if not chunk:
                return
            if self.tty:
                yield "stdout", chunk
                continue
            buf += chunk
            while len(buf) >= 8:
                stream, size = struct.unpack(">BxxxL", buf[:8])
                if len(buf) < 8 + size:
                    break
                data, buf = buf[8 : 8 + size], buf[8 + size :]
                yield ("stderr" if stream == 2 else "stdout"), data

    def _recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except OSError:
            return b""

    async def wait(self) -> int:
        for _ in range(200):
            info = await asyncio.to_thread(self.api.exec_inspect, self.exec_id)
            if not info.get("Running"):
                with contextlib.suppress(OSError):
                    self.sock.close()
                return int(info.get("ExitCode") or 0)
            await asyncio.sleep(0.05)
        return -1

    async def kill(self) -> None:
        def kill() -> None:
            info = self.api.exec_inspect(self.exec_id)
            pid = int(info.get("Pid") or 0)
            if info.get("Running") and pid:
                with contextlib.suppress(OSError):
                    os.kill(pid, 9)

        with contextlib.suppress(Exception):
            await asyncio.to_thread(kill)
        with contextlib.suppress(OSError):
            self.sock.close()
