"""Cluster PKI: a CA and per-identity certificates (cryptography), and gRPC credentials for mutual TLS.

Layout of a TLS directory: ca.crt, ca.key (only where certificates are issued), and
<name>.crt / <name>.key per identity. The certificate's common name is the identity
("admin", "store", "scheduler", "controllers", "node:<name>"). Keys are written 0600.
Every server certificate carries the DNS name "pinnace" plus its addresses, and clients
verify against the name "pinnace", so addresses may change without reissuing.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAME = "pinnace"


@dataclass(frozen=True)
class TLSConfig:
    """PEM bytes of the CA certificate and of one identity's certificate and key."""

    ca: bytes
    cert: bytes
    key: bytes


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def ensure_cluster_pki(directory: str | Path) -> Path:
    """Create the cluster CA in directory if it is not there yet; return the directory."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    if (d / "ca.crt").exists() and (d / "ca.key").exists():
        return d
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pinnace-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_private(d / "ca.key", _key_pem(key))
    (d / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return d


def issue(directory: str | Path, name: str, identity: str, sans: list[str] | None = None) -> TLSConfig:
    """Issue <name>.crt/.key for identity (the CN), signed by the CA in directory; idempotent."""
    d = Path(directory)
    crt, keyp = d / f"{name}.crt", d / f"{name}.key"
    if crt.exists() and keyp.exists():
        return load(d, name)
    ca_key = serialization.load_pem_private_key((d / "ca.key").read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate((d / "ca.crt").read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = [x509.DNSName(SERVER_NAME), x509.DNSName("localhost")]
    for s in [*(sans or []), "127.0.0.1"]:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(s)))
        except ValueError:
            alt.append(x509.DNSName(s))
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    _write_private(keyp, _key_pem(key))
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return load(d, name)


def load(directory: str | Path, name: str) -> TLSConfig:
    """Read ca.crt and <name>.crt/.key from directory."""
    d = Path(directory)
    return TLSConfig(
        ca=(d / "ca.crt").read_bytes(), cert=(d / f"{name}.crt").read_bytes(), key=(d / f"{name}.key").read_bytes()
    )


def load_optional(directory: str, name: str) -> TLSConfig | None:
    """load() when directory is set, else None (plaintext)."""
    return load(directory, name) if directory else None


def server_credentials(cfg: TLSConfig) -> grpc.ServerCredentials:
    """Server side of mutual TLS: clients must present a certificate signed by the cluster CA."""
    return grpc.ssl_server_credentials([(cfg.key, cfg.cert)], root_certificates=cfg.ca, require_client_auth=True)


def channel_credentials(cfg: TLSConfig) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=cfg.ca, private_key=cfg.key, certificate_chain=cfg.cert)


def channel_options(cfg: TLSConfig | None) -> list[tuple[str, str | int]]:
    """Channel options; with TLS the server name checked is always "pinnace"."""
    opts: list[tuple[str, str | int]] = [
        ("grpc.max_receive_message_length", 256 * 1024 * 1024),
        ("grpc.max_send_message_length", 256 * 1024 * 1024),
    ]
    if cfg is not None:
        opts.append(("grpc.ssl_target_name_override", SERVER_NAME))
    return opts


def identity_of(context: grpc.aio.ServicerContext | grpc.ServicerContext) -> str | None:
    """The authenticated peer's identity (certificate CN), or None on a plaintext connection."""
    auth = context.auth_context()
    values = auth.get("x509_common_name") or []
    return values[0].decode() if values else None


def secure_aio_channel(target: str, cfg: TLSConfig | None) -> grpc.aio.Channel:
    """An asyncio channel to target, with mutual TLS when cfg is set."""
    if cfg is None:
        return grpc.aio.insecure_channel(target, options=channel_options(None))
    return grpc.aio.secure_channel(target, channel_credentials(cfg), options=channel_options(cfg))


def secure_channel(target: str, cfg: TLSConfig | None) -> grpc.Channel:
    """A blocking channel to target, with mutual TLS when cfg is set."""
    if cfg is None:
        return grpc.insecure_channel(target, options=channel_options(None))
    return grpc.secure_channel(target, channel_credentials(cfg), options=channel_options(cfg))
