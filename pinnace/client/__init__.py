"""Pinnace SDK: typed store clients (AsyncClient, Client), Informer, WorkQueue, LeaderElector, errors.

    from pinnace.client import AsyncClient, Client, Informer, WorkQueue, LeaderElector, errors

See docs/CONTRACTS.md ("SDK") for the API; each module's docstring has the details.
"""

from pinnace.client import errors
from pinnace.client.aio import AsyncClient, kind_info
from pinnace.client.informer import Informer, meta_namespace_key, split_key
from pinnace.client.leader import LeaderElector
from pinnace.client.retry import Backoff
from pinnace.client.sync import Client
from pinnace.client.types import ListResult, WatchEvent
from pinnace.client.workqueue import ShutDown, WorkQueue, run_workers

__all__ = [
    "AsyncClient",
    "Backoff",
    "Client",
    "Informer",
    "LeaderElector",
    "ListResult",
    "ShutDown",
    "WatchEvent",
    "WorkQueue",
    "errors",
    "kind_info",
    "meta_namespace_key",
    "run_workers",
    "split_key",
]
