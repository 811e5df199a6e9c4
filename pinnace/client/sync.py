"""Client: the synchronous face of AsyncClient, with the same methods.

It runs an AsyncClient on a private event loop in a daemon thread; each call blocks until the
coroutine there finishes. ``watch`` and ``iter_list`` are ordinary generators. Callbacks given to
``mutate``/``mutate_status`` run on that loop's thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from google.protobuf.message import Message

from pinnace.api import store_pb2
from pinnace.client.aio import AsyncClient
from pinnace.client.types import ListResult, WatchEvent

M = TypeVar("M", bound=Message)
T = TypeVar("T")


class Client:
    """Blocking store client; see AsyncClient for the semantics of each method."""

    def __init__(
        self,
        endpoints: Sequence[str] | str = ("127.0.0.1:7000",),
        tls: Any = None,
        *,
        timeout: float = 10.0,
        retry_timeout: float = 30.0,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pinnace-client", daemon=True)
        self._thread.start()
        self.aio = AsyncClient(endpoints, tls, timeout=timeout, retry_timeout=retry_timeout, options=options)
        self.endpoints = self.aio.endpoints

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop.is_closed():
            coro.close()
            raise RuntimeError("client is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        fut: concurrent.futures.Future[T] | None = None
        try:
            while True:
                fut = asyncio.run_coroutine_threadsafe(agen.__anext__(), self._loop)  # type: ignore[arg-type]
                try:
                    item = fut.result()
                except StopAsyncIteration:
                    return
                yield item
        finally:
            # Interrupted (generator closed, KeyboardInterrupt, ...) while a step may still run: cancel it.
            if fut is not None and not fut.done():
                fut.cancel()
            aclose = getattr(agen, "aclose", None)
            if aclose is not None and not self._loop.is_closed():
                for _ in range(100):
                    try:
                        self._run(aclose())
                        break
                    except RuntimeError:  # the cancelled step has not finished yet
                        time.sleep(0.01)
                    except Exception:
                        break

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self.aio.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self, obj: M, *, dry_run: bool = False) -> M:
        return self._run(self.aio.create(obj, dry_run=dry_run))

    def get(self, kind: type[M], name: str, namespace: str | None = "default") -> M:
        return self._run(self.aio.get(kind, name, namespace))

    def list(
        self,
        kind: type[M],
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 0,
        *,
        continue_token: str = "",
        revision: int = 0,
    ) -> ListResult[M]:
        return self._run(
            self.aio.list(
                kind, namespace, label_selector, field_selector, limit, continue_token=continue_token, revision=revision
            )
        )

    def iter_list(
        self,
        kind: type[M],
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        page_size: int = 500,
    ) -> Iterator[M]:
        return self._iterate(self.aio.iter_list(kind, namespace, label_selector, field_selector, page_size))

    def list_all(
        self,
        kind: type[M],
        namespace: str | None = None,
        label_selector: str = "",
        field_selector: str = "",
        page_size: int = 1000,
    ) -> ListResult[M]:
        return self._run(self.aio.list_all(kind, namespace, label_selector, field_selector, page_size))

    def update(self, obj: M, *, dry_run: bool = False) -> M:
        return self._run(self.aio.update(obj, dry_run=dry_run))

    def update_status(self, obj: M, *, dry_run: bool = False) -> M:
        return self._run(self.aio.update_status(obj, dry_run=dry_run))

    def delete(
        self,
        kind: type[M],
        name: str,
        namespace: str | None = "default",
        grace_period_seconds: int | None = None,
        *,
        uid: str = "",
        resource_version: str = "",
        propagation_policy: str = "",
        dry_run: bool = False,
    ) -> M | None:
        return self._run(
            self.aio.delete(
                kind,
                name,
                namespace,
                grace_period_seconds,
                uid=uid,
                resource_version=resource_version,
                propagation_policy=propagation_policy,
                dry_run=dry_run,
            )
        )

    def mutate(
        self,
        kind: type[M],
        name: str,
        namespace: str | None = "default",
        fn: Callable[[M], M | Awaitable[M | None] | None] | None = None,
        *,
        attempts: int = 20,
    ) -> M:
        return self._run(self.aio.mutate(kind, name, namespace, fn, attempts=attempts))

    def mutate_status(
        self,
        kind: type[M],
        name: str,
        namespace: str | None = "default",
        fn: Callable[[M], M | Awaitable[M | None] | None] | None = None,
        *,
        attempts: int = 20,
    ) -> M:
        return self._run(self.aio.mutate_status(kind, name, namespace, fn, attempts=attempts))

    def current_revision(self, kind: Any = "namespace") -> int:
        return self._run(self.aio.current_revision(kind))

    def watch(
        self,
        kind: type[M],
        namespace: str | None = None,
        from_revision: int = 0,
        label_selector: str = "",
        field_selector: str = "",
        *,
        name: str = "",
        bookmarks: bool = False,
        resume: bool = True,
    ) -> Iterator[WatchEvent[M]]:
        return self._iterate(
            self.aio.watch(
                kind,
                namespace,
                from_revision,
                label_selector,
                field_selector,
                name=name,
                bookmarks=bookmarks,
                resume=resume,
            )
        )

    def status(self) -> store_pb2.StatusResponse:
        return self._run(self.aio.status())

    def compact(self, revision: int) -> int:
        return self._run(self.aio.compact(revision))
