"""Probes run from inside a pod's network namespace: ICMP echo, TCP connect, DNS query, HTTP GET.

A socket belongs to the namespace it was created in, so each probe creates its socket after
switching the calling thread into the target namespace (setns affects only that thread) and
switches back at once; the probe itself then runs normally. Blocking; call via to_thread.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass, field

from dnslib import QTYPE, RCODE, DNSRecord

from services.netagent.links import in_netns


@dataclass
class ProbeResult:
    ok: bool
    detail: str
    seconds: float = 0.0
    answers: list[str] = field(default_factory=list)


def socket_in(netns_path: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket created inside the network namespace at netns_path ('' = this one)."""
    if not netns_path:
        return socket.socket(family, kind, proto)
    with in_netns(netns_path):
        return socket.socket(family, kind, proto)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ping(netns_path: str, ip: str, timeout: float = 1.0, count: int = 3) -> ProbeResult:
    """ICMP echo; ok on the first reply (up to `count` tries)."""
    t0 = time.monotonic()
    s = socket_in(netns_path, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        ident = os.getpid() & 0xFFFF
        per = max(timeout / count, 0.2)
        for seq in range(1, count + 1):
            payload = b"pinnace-diagnose"
            hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            pkt = struct.pack("!BBHHH", 8, 0, _checksum(hdr + payload), ident, seq) + payload
            try:
                s.sendto(pkt, (ip, 0))
            except OSError as e:
                return ProbeResult(False, f"ping {ip}: {e.strerror or e}", time.monotonic() - t0)
            deadline = time.monotonic() + per
            while (left := deadline - time.monotonic()) > 0:
                s.settimeout(left)
                try:
                    data, addr = s.recvfrom(2048)
                except TimeoutError:
                    break
                ihl = (data[0] & 0x0F) * 4
                typ, _code, _ck, rid, rseq = struct.unpack("!BBHHH", data[ihl : ihl + 8])
                if addr[0] == ip and typ == 0 and rid == ident and rseq == seq:
                    dt = time.monotonic() - t0
                    return ProbeResult(True, f"echo reply from {ip} in {dt * 1000:.1f} ms", dt)
        return ProbeResult(False, f"no echo reply from {ip} after {count} tries", time.monotonic() - t0)
    finally:
        s.close()


def tcp(netns_path: str, host: str, port: int, timeout: float = 2.0) -> ProbeResult:
    t0 = time.monotonic()
    s = socket_in(netns_path, socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect((host, port))
        dt = time.monotonic() - t0
        return ProbeResult(True, f"connected to {host}:{port} in {dt * 1000:.1f} ms", dt)
    except TimeoutError:
        return ProbeResult(False, f"connect to {host}:{port} timed out after {timeout:.1f}s", time.monotonic() - t0)
    except OSError as e:
        return ProbeResult(False, f"connect to {host}:{port}: {e.strerror or e}", time.monotonic() - t0)
    finally:
        s.close()


def dns(netns_path: str, server: str, name: str, timeout: float = 2.0, port: int = 53) -> ProbeResult:
    t0 = time.monotonic()
    s = socket_in(netns_path, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        q = DNSRecord.question(name, "A")
        try:
            s.sendto(q.pack(), (server, port))
            data, _ = s.recvfrom(4096)
        except TimeoutError:
            return ProbeResult(
                False, f"no answer from {server} for {name} within {timeout:.1f}s", time.monotonic() - t0
            )
        except OSError as e:
            return ProbeResult(False, f"query to {server}: {e.strerror or e}", time.monotonic() - t0)
        reply = DNSRecord.parse(data)
        answers = [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]
        rcode = RCODE.get(reply.header.rcode)
        dt = time.monotonic() - t0
        ok = reply.header.rcode == RCODE.NOERROR and bool(answers)
        return ProbeResult(ok, f"{name} -> {', '.join(answers) or '(none)'} ({rcode}) from {server}", dt, answers)
    finally:
        s.close()


def http(netns_path: str, host: str, port: int, path: str = "/", timeout: float = 2.0) -> ProbeResult:
    t0 = time.monotonic()
    s = socket_in(netns_path, socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        s.connect((host, port))
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
        raw = b"".join(chunks).decode(errors="replace")
        head, _, body = raw.partition("\r\n\r\n")
        status = head.split("\r\n", 1)[0]
        dt = time.monotonic() - t0
        ok = " 200 " in status + " "
        return ProbeResult(
            ok, f"{status} from {host}:{port}", dt, [body.strip().splitlines()[0] if body.strip() else ""]
        )
    except TimeoutError:
        return ProbeResult(False, f"GET http://{host}:{port}{path} timed out", time.monotonic() - t0)
    except OSError as e:
        return ProbeResult(False, f"GET http://{host}:{port}{path}: {e.strerror or e}", time.monotonic() - t0)
    finally:
        s.close()


def split_hostport(target: str, default_port: int = 0) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep:
        return target, default_port
    return host, int(port)
