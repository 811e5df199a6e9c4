"""Container shim for the host runtime (like conmon): run as `python3 -S -I shim.py SPEC.json`.

It enters the pod's network namespace, makes a private mount namespace with the volumes bound at
their mountPaths, forks the container process (own session, moved into its cgroups), copies its
stdout/stderr into a rotated CRI-format log file, and writes the exit status to a JSON file. It
outlives agent restarts, so exit codes are never lost. Only the standard library; no package imports.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import selectors
import signal
import sys
import time
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
CLONE_NEWUTS = 0x04000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

_libc: Any = None


def _lib() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _mount(src: str | None, target: str, flags: int) -> None:
    lib = _lib()
    rc = lib.mount(
        src.encode() if src else None,
        target.encode(),
        None,
        ctypes.c_ulong(flags),
        None,
    )
    _check(rc, f"mount {src} {target}")


def setup_namespaces(spec: dict[str, Any]) -> None:
    """Join the pod netns, unshare a private mount namespace and bind the volumes."""
    lib = _lib()
    netns = spec.get("netns") or ""
    if netns:
        fd = os.open(netns, os.O_RDONLY)
        try:
            _check(lib.setns(fd, CLONE_NEWNET), f"setns {netns}")
        finally:
            os.close(fd)
    hostname = spec.get("hostname") or ""
    if hostname:
        _check(lib.unshare(CLONE_NEWUTS), "unshare UTS namespace")
        raw = hostname.encode()[:64]
        _check(lib.sethostname(raw, len(raw)), "sethostname")
    mounts = spec.get("mounts") or []
    if not mounts:
        return
    _check(lib.unshare(CLONE_NEWNS), "unshare mount namespace")
    _mount(None, "/", MS_REC | MS_PRIVATE)
    created: list[str] = []
    for m in mounts:
        src, target = m["source"], m["target"]
        if not os.path.exists(target):
            # Create the mount point (and remember it so the agent can remove it afterwards).
            parts: list[str] = []
            p = target
            while p and p != "/" and not os.path.exists(p):
                parts.append(p)
                p = os.path.dirname(p)
            if os.path.isdir(src):
                os.makedirs(target, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                open(target, "a").close()
            created.extend(parts)
        _mount(src, target, MS_BIND | MS_REC)
        if m.get("read_only"):
            _mount(None, target, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC)
    if created and spec.get("created_path"):
        with open(spec["created_path"], "a") as f:
            for p in created:
                f.write(p + "\n")


class LogWriter:
    """CRI log format lines (`<time> <stream> <F|P> <text>`) with size-based rotation."""

    def __init__(self, path: str, max_bytes: int, max_files: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.f = open(path, "ab", buffering=0)
        self.size = self.f.tell()
        self.pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def _rotate(self) -> None:
        self.f.close()
        for i in range(self.max_files - 1, 0, -1):
            src = self.path if i == 1 else f"{self.path}.{i - 1}"
            if os.path.exists(src):
                os.replace(src, f"{self.path}.{i}")
        self.f = open(self.path, "ab", buffering=0)
        self.size = 0

    def _line(self, stream: str, tag: bytes, text: bytes) -> None:
        now = time.time()
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int((now % 1) * 1e9):09d}Z"
        rec = ts.encode() + b" " + stream.encode() + b" " + tag + b" " + text + b"\n"
        if self.size + len(rec) > self.max_bytes and self.size > 0:
            self._rotate()
        self.f.write(rec)
        self.size += len(rec)

    def feed(self, stream: str, data: bytes) -> None:
        buf = self.pending[stream] + data
        while True:
            i = buf.find(b"\n")
            if i < 0:
                break
            self._line(stream, b"F", buf[:i])
            buf = buf[i + 1 :]
        while len(buf) >= 16384:
            self._line(stream, b"P", buf[:16384])
            buf = buf[16384:]
        self.pending[stream] = buf

    def flush(self) -> None:
        for stream, buf in self.pending.items():
            if buf:
                self._line(stream, b"P", buf)
        self.pending = {"stdout": b"", "stderr": b""}


def _write_json(path: str, data: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def child(spec: dict[str, Any], out_w: int, err_w: int, status_w: int) -> None:
    """In the forked child: new session, cgroups, stdio, chdir, exec. Never returns."""
    try:
        os.setsid()
        for procs in spec.get("cgroups") or []:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        if spec.get("cwd"):
            os.chdir(spec["cwd"])
        argv = spec["argv"]
        os.execvpe(argv[0], argv, spec.get("env") or {})
    except BaseException as e:  # report the start error to the shim and die
        code = e.errno if isinstance(e, OSError) and e.errno else errno.EINVAL
        msg = f"{code}:{e}".encode()
        try:
            os.write(status_w, msg)
        finally:
            os._exit(127)


def proc_start_time(pid: int) -> int:
    """Start time of a process in clock ticks since boot (/proc/<pid>/stat field 22), 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat[stat.rfind(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


def run_shim(spec_path: str) -> None:
    """Run one container attempt described by spec_path (this process becomes its shim)."""
    with open(spec_path) as f:
        spec = json.load(f)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    try:
        setup_namespaces(spec)
    except Exception as e:
        _write_json(spec["exit_path"], {"exit_code": 128, "signal": 0, "error": str(e), "finished_at": time.time()})
        print(json.dumps({"error": str(e)}), flush=True)
        return
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    st_r, st_w = os.pipe2(os.O_CLOEXEC)
    started_at = time.time()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(err_r)
        os.close(st_r)
        child(spec, out_w, err_w, st_w)
    os.close(out_w)
    os.close(err_w)
    os.close(st_w)
    err = b""
    while True:
        chunk = os.read(st_r, 4096)
        if not chunk:
            break
        err += chunk
    os.close(st_r)
    if err:
        os.waitpid(pid, 0)
        msg = err.decode(errors="replace").split(":", 1)[-1]
        _write_json(spec["exit_path"], {"exit_code": 128, "signal": 0, "error": msg, "finished_at": time.time()})
        print(json.dumps({"error": msg}), flush=True)
        return
    me = os.getpid()
    _write_json(
        spec["pid_path"], {"pid": pid, "shim_pid": me, "shim_start": proc_start_time(me), "started_at": started_at}
    )

    def forward(signum: int, _frame: Any) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    print(
        json.dumps({"pid": pid, "started_at": started_at, "shim_pid": me, "shim_start": proc_start_time(me)}),
        flush=True,
    )
    # Detach from the agent's stdout pipe so the agent can close its end.
    nul = os.open("/dev/null", os.O_RDWR)
    os.dup2(nul, 0)
    os.dup2(nul, 1)
    log = LogWriter(spec["log_path"], int(spec.get("log_max_bytes", 10 << 20)), int(spec.get("log_max_files", 2)))
    sel = selectors.DefaultSelector()
    sel.register(out_r, selectors.EVENT_READ, "stdout")
    sel.register(err_r, selectors.EVENT_READ, "stderr")
    status: int | None = None
    exited_at = 0.0
    open_fds = 2
    while open_fds:
        timeout = 0.5 if status is None else max(0.0, exited_at + 1.0 - time.time())
        events = sel.select(timeout)
        for key, _ in events:
            fd = key.fd
            try:
                data = os.read(fd, 65536)
            except InterruptedError:
                continue
            if not data:
                sel.unregister(fd)
                os.close(fd)
                open_fds -= 1
            else:
                log.feed(key.data, data)
        if status is None:
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid == pid:
                status = st
                exited_at = time.time()
        elif time.time() >= exited_at + 1.0:
            break  # grandchildren keep the pipes open; stop copying
    if status is None:
        _, status = os.waitpid(pid, 0)
        exited_at = time.time()
    log.flush()
    code = os.waitstatus_to_exitcode(status)
    signum = -code if code < 0 else 0
    exit_code = 128 + signum if signum else code
    _write_json(spec["exit_path"], {"exit_code": exit_code, "signal": signum, "error": "", "finished_at": exited_at})


def _reap_children(_signum: int = 0, _frame: Any = None) -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def serve(sock_path: str) -> None:
    """Fork server: one request per connection (a spec path and a newline); the forked child becomes
    that container's shim and answers on the connection. Saves the interpreter start per container."""
    import socket

    parent = os.getppid()
    _lib().prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: go away with the agent (forked shims do not inherit it)
    if os.getppid() != parent:
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sock_path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    os.chmod(sock_path, 0o600)
    srv.listen(256)
    _lib().prctl(15, b"pinnace-shimsrv")
    signal.signal(signal.SIGCHLD, _reap_children)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        spec_path = data.decode().strip()
        if not spec_path:
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _lib().prctl(15, b"pinnace-shim")  # PR_SET_NAME, for ps/top
                srv.close()
                os.setsid()
                os.dup2(conn.fileno(), 1)
                conn.close()
                run_shim(spec_path)
            except BaseException as e:
                with contextlib.suppress(Exception):
                    print(json.dumps({"error": f"shim: {e}"}), flush=True)
            finally:
                os._exit(0)
        conn.close()
        _reap_children()


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        run_shim(sys.argv[1])


if __name__ == "__main__":
    main()
