"""Request limits that keep one client from starving the store, and the refusal audit log.

- Maximum object size (`--max-object-bytes`, default 1.5 MiB like etcd): a Create, Update or
  UpdateStatus whose object is larger is refused with INVALID_ARGUMENT (retrying cannot help).
- Maximum request rate per client (`--max-requests-per-second`, 0 = off): a token bucket per
  client (the certificate identity on TLS, else the peer address, i.e. one connection); beyond
  it a call is refused with RESOURCE_EXHAUSTED before any work is done, so the cost of a
  flooding client is a dictionary lookup per call and others keep being served.
- Maximum open watches per client (`--max-watchers-per-client`, 0 = off): RESOURCE_EXHAUSTED.
- Requests that do not decode are refused with INVALID_ARGUMENT (`decoder`; gRPC itself would
  answer UNKNOWN with the parser's exception).
- A deadline on every server-side wait of a unary call (`--max-wait`, seconds): a call still
  waiting (for a leader, a commit, a read barrier) is answered DEADLINE_EXCEEDED, whatever
  deadline the client set (or none).

Refusals for authorization and for limits are logged by `audit_refusal` (logger "store.audit");
limit refusals at most once per client and reason every `LOG_EVERY` seconds, with a count.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from pinnace.api import store_pb2
from pinnace.common import logging, tls
from services.store.registry.errors import StoreError

DEFAULT_MAX_OBJECT_BYTES = 1536 * 1024
DEFAULT_MAX_WAIT = 30.0
LOG_EVERY = 10.0
MAX_BUCKETS = 10_000  # idle (full) buckets are dropped beyond this many clients

T = TypeVar("T")
log = logging.get_logger("store.audit")


@dataclass(frozen=True)
class LimitConfig:
    """The store's limits; 0 turns a limit off."""

    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES
    max_requests_per_second: float = 0.0
    burst: int = 0  # 0: twice the rate (at least 1)
    max_watchers_per_client: int = 0
    max_wait: float = DEFAULT_MAX_WAIT


def client_key(context: Any) -> str:
    """Who a limit applies to: the certificate identity on TLS, else the peer address."""
    if context is None:
        return "internal"
    try:
        ident = tls.identity_of(context)
    except Exception:
        ident = None
    if ident:
        return ident
    try:
        return str(context.peer())
    except Exception:
        return "unknown"


def _peer(context: Any) -> str:
    try:
        return str(context.peer())
    except Exception:
        return ""


def audit_refusal(context: Any, code: grpc.StatusCode, reason: str, **fields: Any) -> None:
    """Log one refused request (who, from where, why)."""
    log.warning(
        "request refused",
        identity=client_key(context),
        peer=_peer(context),
        code=code.name,
        reason=reason,
        **fields,
    )


class Undecodable:
    """What `decoder` hands the handler for bytes that are not a valid request."""

    __slots__ = ("error", "size", "type_name")

    def __init__(self, type_name: str, size: int, error: str) -> None:
        self.type_name = type_name
        self.size = size
        self.error = error


def decoder(cls: type[Message]) -> Callable[[bytes], Message | Undecodable]:
    """A request_deserializer that never raises (see `Limits.admit`)."""
    parse = cls.FromString
    name = cls.DESCRIPTOR.full_name

    def decode(data: bytes) -> Message | Undecodable:
        try:
            return parse(data)
        except DecodeError as e:
            return Undecodable(name, len(data), str(e) or "malformed")

    return decode


class _Bucket:
    __slots__ = ("last", "tokens")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.last = now


class Limits:
    """Enforces a LimitConfig; one instance per store replica (event-loop thread only)."""

    def __init__(self, cfg: LimitConfig | None = None) -> None:
        self.cfg = cfg or LimitConfig()
        rate = self.cfg.max_requests_per_second
        self._rate = rate
        self._burst = float(self.cfg.burst or max(1.0, 2 * rate))
        self._buckets: dict[str, _Bucket] = {}
        self._watchers: dict[str, int] = {}
        self._logged: dict[tuple[str, str], tuple[float, int]] = {}
        self.refused: dict[str, int] = {"size": 0, "rate": 0, "watchers": 0, "deadline": 0}

    # ------------------------------------------------------------------ refusals

    def _refuse(self, context: Any, key: str, what: str, code: grpc.StatusCode, message: str) -> StoreError:
        self.refused[what] += 1
        now = time.monotonic()
        last, suppressed = self._logged.get((key, what), (0.0, 0))
        if now - last >= LOG_EVERY:
            audit_refusal(context, code, message, limit=what, suppressed=suppressed)
            self._logged[(key, what)] = (now, 0)
            if len(self._logged) > MAX_BUCKETS:
                self._logged.clear()
        else:
            self._logged[(key, what)] = (last, suppressed + 1)
        return StoreError(code, message)

    # ------------------------------------------------------------------ per call

    def admit(self, context: Any, req: Any, rate: bool = True) -> None:
        """Rate and size checks for one call; raises StoreError (RESOURCE_EXHAUSTED, INVALID_ARGUMENT)."""
        if rate and self._rate > 0:
            self._take(context)
        if isinstance(req, Undecodable):
            raise StoreError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"request: cannot decode {req.size} bytes as {req.type_name}: {req.error}",
            )
        limit = self.cfg.max_object_bytes
        if limit and isinstance(req, store_pb2.CreateRequest | store_pb2.UpdateRequest):
            size = req.object.ByteSize()
            if size > limit:
                raise self._refuse(
                    context,
                    client_key(context),
                    "size",
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"object: Too long: the object is {size} bytes, more than the store's maximum of {limit} "
                    "bytes (--max-object-bytes)",
                )

    def _take(self, context: Any) -> None:
        key = client_key(context)
        now = time.monotonic()
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._prune(now)
            b = self._buckets[key] = _Bucket(self._burst, now)
        else:
            b.tokens = min(self._burst, b.tokens + (now - b.last) * self._rate)
            b.last = now
        if b.tokens < 1.0:
            raise self._refuse(
                context,
                key,
                "rate",
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"client {key} is over the store's request rate limit ({self._rate:g} requests/s, burst "
                f"{self._burst:g}; --max-requests-per-second): slow down and retry",
            )
        b.tokens -= 1.0

    def _prune(self, now: float) -> None:
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.last) * self._rate >= self._burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= MAX_BUCKETS:  # everyone is busy: start over rather than grow
            self._buckets.clear()

    @contextlib.contextmanager
    def watcher(self, context: Any) -> Iterator[None]:
        """Holds one watch slot of the caller; RESOURCE_EXHAUSTED when all are taken."""
        limit = self.cfg.max_watchers_per_client
        if not limit:
            yield
            return
        key = client_key(context)
        n = self._watchers.get(key, 0)
        if n >= limit:
            raise self._refuse(
                context,
                key,
                "watchers",
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"client {key} already has {n} open watches, the store's maximum per client "
                "(--max-watchers-per-client): close some or share them (an Informer per kind)",
            )
        self._watchers[key] = n + 1
        try:
            yield
        finally:
            left = self._watchers.get(key, 1) - 1
            if left > 0:
                self._watchers[key] = left
            else:
                self._watchers.pop(key, None)

    def watchers(self, key: str) -> int:
        return self._watchers.get(key, 0)

    async def bounded(self, context: Any, call: Awaitable[T]) -> T:
        """Await call, answering DEADLINE_EXCEEDED once it has waited max_wait seconds."""
        wait = self.cfg.max_wait
        if not wait or wait <= 0:
            return await call
        try:
            async with asyncio.timeout(wait):
                return await call
        except TimeoutError:
            raise self._refuse(
                context,
                client_key(context),
                "deadline",
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"the store gave up after waiting {wait:g}s (--max-wait) for a leader, a commit or a read; "
                "a write may or may not have been applied: read it back and retry",
            ) from None


def add_limit_flags(parser: Any) -> None:
    """The limit flags of `python -m services.store` (each also PINNACE_<FLAG>)."""
    parser.add_argument(
        "--max-object-bytes",
        type=int,
        default=DEFAULT_MAX_OBJECT_BYTES,
        help="largest object a Create/Update may carry (0 = no limit)",
    )
    parser.add_argument(
        "--max-requests-per-second",
        type=float,
        default=0.0,
        help="requests per second per client identity (or connection without TLS); 0 = no limit",
    )
    parser.add_argument("--request-burst", type=int, default=0, help="token bucket size (default: 2x the rate)")
    parser.add_argument("--max-watchers-per-client", type=int, default=0, help="open watches per client; 0 = no limit")
    parser.add_argument(
        "--max-wait",
        type=float,
        default=DEFAULT_MAX_WAIT,
        help="seconds a unary request may wait server-side (leader, commit, read barrier); 0 = no limit",
    )


def limits_from_args(args: Any) -> Limits:
    """Limits from the parsed flags of add_limit_flags (missing flags take the defaults)."""
    return Limits(
        LimitConfig(
            max_object_bytes=int(getattr(args, "max_object_bytes", DEFAULT_MAX_OBJECT_BYTES)),
            max_requests_per_second=float(getattr(args, "max_requests_per_second", 0.0)),
            burst=int(getattr(args, "request_burst", 0)),
            max_watchers_per_client=int(getattr(args, "max_watchers_per_client", 0)),
            max_wait=float(getattr(args, "max_wait", DEFAULT_MAX_WAIT)),
        )
    )
