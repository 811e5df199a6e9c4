"""Kubernetes-style Events about pods (Started, Killing, Unhealthy, BackOff, Failed), best effort.

Events are written in the background; repeats of the same (pod, reason, message) within the
aggregation window bump the count of the existing Event instead of creating a new one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from pinnace.api import cluster_pb2, pod_pb2
from pinnace.client import errors
from pinnace.common.logging import get_logger

log = get_logger("nodeagent.events")

WINDOW = 600.0


class EventRecorder:
    def __init__(self, client: Any, node: str, component: str = "nodeagent") -> None:
        self.client = client
        self.node = node
        self.component = component
        self._recent: dict[tuple[str, str, str], tuple[float, cluster_pb2.Event]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._may_update = True

    def emit(self, pod: pod_pb2.Pod, type_: str, reason: str, message: str, field_path: str = "") -> None:
        try:
            task = asyncio.get_running_loop().create_task(self._write(pod, type_, reason, message, field_path))
        except RuntimeError:
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, pod: pod_pb2.Pod, type_: str, reason: str, message: str, field_path: str) -> None:
        now = Timestamp()
        now.GetCurrentTime()
        key = (pod.metadata.uid, reason, message)
        try:
            prev = self._recent.get(key)
            updated = False
            if prev is not None and time.monotonic() - prev[0] < WINDOW and self._may_update:
                ev = cluster_pb2.Event()
                ev.CopyFrom(prev[1])
                ev.count += 1
                ev.last_timestamp.CopyFrom(now)
                ev.metadata.resource_version = ""
                try:
                    ev = await self.client.update(ev)
                    updated = True
                except (errors.Forbidden, errors.NotFound):
                    # a node identity may create Events but not update them: record the repeat anew
                    self._may_update = False
            if not updated:
                ev = cluster_pb2.Event()
                ev.metadata.name = f"{pod.metadata.name}.{uuid.uuid4().hex[:12]}"
                ev.metadata.namespace = pod.metadata.namespace
                ref = ev.involved_object
                ref.kind, ref.api_version = "Pod", "v1"
                ref.namespace, ref.name, ref.uid = pod.metadata.namespace, pod.metadata.name, pod.metadata.uid
                ref.field_path = field_path
                ev.reason, ev.message, ev.type, ev.count = reason, message, type_, 1
                ev.source.component, ev.source.host = self.component, self.node
                ev.reporting_component, ev.reporting_instance = self.component, self.node
                ev.first_timestamp.CopyFrom(now)
                ev.last_timestamp.CopyFrom(now)
                ev = await self.client.create(ev)
            self._recent[key] = (time.monotonic(), ev)
            if len(self._recent) > 5000:
                cutoff = time.monotonic() - WINDOW
                self._recent = {k: v for k, v in self._recent.items() if v[0] > cutoff}
        except Exception as e:
            log.debug("event not recorded", reason=reason, error=str(e))

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
