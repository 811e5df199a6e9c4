"""A real nfs-ganesha server in a network namespace the test creates, plus a tiny ONC RPC client.

Layout: namespace <srv> (10.211.<k>.1) runs rpcbind + ganesha.nfsd (VFS FSAL) in a private mount
namespace whose /run is a tmpfs (so nothing touches the host's /run); namespace <cli> (10.211.<k>.2)
is where the checks (and, on a kernel with an NFS client, the mount) run. A veth pair joins them;
neither has a default route or any path to the host's interfaces.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

_CONF = """
NFS_CORE_PARAM {{ Protocols = 3, 4; NFS_Port = 2049; MNT_Port = 20048;
  Enable_NLM = false; Enable_RQUOTA = false; Enable_UDP = false; }}
NFSV4 {{ Graceless = true; RecoveryBackend = fs; RecoveryRoot = {root}/recovery; }}
EXPORT {{ Export_Id = 1; Path = {export}; Pseudo = /export; Access_Type = RW; Squash = No_Root_Squash;
  Protocols = 3, 4; Transports = TCP; SecType = sys; FSAL {{ Name = VFS; }} }}
LOG {{ Default_Log_Level = EVENT; }}
"""

_START = """
trap 'kill $R $G 2>/dev/null; wait' TERM INT
mount -t tmpfs tmpfs /run
rpcbind -f -w & R=$!
sleep 0.3
ganesha.nfsd -F -L {root}/ganesha.log -f {root}/ganesha.conf -p {root}/ganesha.pid & G=$!
wait
"""


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


class NFSLab:
    def __init__(self, root: Path) -> None:
        self.root = root
        tag = secrets.token_hex(3)
        self.srv, self.cli = f"pnfs-s-{tag}", f"pnfs-c-{tag}"
        k = secrets.randbelow(200) + 20
        self.server_ip, self.client_ip = f"10.211.{k}.1", f"10.211.{k}.2"
        self.export = root / "export"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.export.mkdir(parents=True)
        (self.root / "recovery").mkdir()
        (self.export / "hello.txt").write_text("hello from nfs\n")
        (self.root / "ganesha.conf").write_text(_CONF.format(root=self.root, export=self.export))
        (self.root / "start.sh").write_text(_START.format(root=self.root))
        sh("ip", "netns", "add", self.srv)
        sh("ip", "netns", "add", self.cli)
        veth_s, veth_c = f"vs{self.srv[-6:]}", f"vc{self.srv[-6:]}"
        sh("ip", "link", "add", veth_s, "netns", self.srv, "type", "veth", "peer", "name", veth_c, "netns", self.cli)
        for ns, dev, ip in ((self.srv, veth_s, self.server_ip), (self.cli, veth_c, self.client_ip)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        self.proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.srv,
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                str(self.root / "start.sh"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.in_client("rpcinfo", "-p", self.server_ip, check=False).stdout.count("mountd"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"nfs-ganesha did not come up: {self.log()[-2000:]}")

    def log(self) -> str:
        try:
            return (self.root / "ganesha.log").read_text()
        except OSError:
            return ""

    def in_client(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.cli, *cmd, check=check)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for ns in (self.srv, self.cli):
            sh("ip", "netns", "del", ns, check=False)


# -- a minimal ONC RPC (RFC 5531) client over TCP, for NULL and MOUNT v3 MNT ---------------------


def _xdr_string(s: bytes) -> bytes:
    pad = (4 - len(s) % 4) % 4
    return struct.pack(">I", len(s)) + s + b"\0" * pad


def rpc_call(host: str, port: int, prog: int, vers: int, proc: int, args: bytes = b"", timeout: float = 5.0) -> bytes:
    """One call with AUTH_SYS (uid 0); returns the reply's result bytes; raises on a rejected call."""
    xid = int.from_bytes(os.urandom(4), "big")
    stamp = int(time.time()) & 0xFFFFFFFF
    cred_body = struct.pack(">I", stamp) + _xdr_string(b"pinnace-test") + struct.pack(">III", 0, 0, 0)
    cred = struct.pack(">II", 1, len(cred_body)) + cred_body  # AUTH_SYS
    verf = struct.pack(">II", 0, 0)  # AUTH_NONE
    msg = struct.pack(">IIIIII", xid, 0, 2, prog, vers, proc) + cred + verf + args
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(struct.pack(">I", 0x80000000 | len(msg)) + msg)
        data = b""
        last = False
        while not last:
            hdr = _recv(s, 4)
            (mark,) = struct.unpack(">I", hdr)
            last = bool(mark & 0x80000000)
            data += _recv(s, mark & 0x7FFFFFFF)
    rxid, mtype, reply_stat = struct.unpack(">III", data[:12])
    if rxid != xid or mtype != 1 or reply_stat != 0:
        raise OSError(f"RPC call denied (reply_stat {reply_stat})")
    _flavor, vlen = struct.unpack(">II", data[12:20])
    off = 20 + vlen + (4 - vlen % 4) % 4
    (accept_stat,) = struct.unpack(">I", data[off : off + 4])
    if accept_stat != 0:
        raise OSError(f"RPC call not accepted (accept_stat {accept_stat})")
    return data[off + 4 :]


def _recv(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed mid-reply")
        buf += chunk
    return buf


def mount_v3(host: str, path: str, port: int = 20048) -> tuple[int, bytes]:
    """MOUNTPROC3_MNT: (status, file handle); status 0 = MNT3_OK."""
    res = rpc_call(host, port, 100005, 3, 1, _xdr_string(path.encode()))
    (status,) = struct.unpack(">I", res[:4])
    if status != 0:
        return status, b""
    (fhlen,) = struct.unpack(">I", res[4:8])
    return 0, res[8 : 8 + fhlen]


def probe(host: str, path: str) -> dict[str, object]:
    """NULL on NFS v3/v4 and MOUNT, MNT of path and of a path that is not exported."""
    out: dict[str, object] = {}
    for vers in (3, 4):
        rpc_call(host, 2049, 100003, vers, 0)
        out[f"nfs_v{vers}_null"] = "ok"
    rpc_call(host, 20048, 100005, 3, 0)
    out["mount_null"] = "ok"
    status, fh = mount_v3(host, path)
    out["mnt_status"], out["fh_len"] = status, len(fh)
    out["mnt_missing_status"] = mount_v3(host, "/not/exported")[0]
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(probe(sys.argv[1], sys.argv[2])))
