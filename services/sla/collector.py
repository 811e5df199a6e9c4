"""The SlaCollector gRPC service: node probes push latency histograms; they land in per-SLA windows."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import numpy as np

from pinnace.api import sla_pb2, sla_pb2_grpc
from services.sla.histogram import BOUNDS_MS, Window


class Windows:
    """One sliding window per SLA, keyed "namespace/name"."""

    def __init__(self, seconds_for: Callable[[str], float]) -> None:
        self._seconds_for = seconds_for
        self._windows: dict[str, Window] = {}

    def get(self, key: str) -> Window:
        seconds = self._seconds_for(key)
        w = self._windows.get(key)
        if w is None or w.seconds != seconds:
            w = self._windows[key] = Window(seconds)
        return w

    def drop(self, key: str) -> None:
        self._windows.pop(key, None)

    def add_report(self, report: sla_pb2.SlaReport, now: float | None = None) -> None:
        if tuple(report.bucket_bounds_ms) != BOUNDS_MS[: len(report.bucket_bounds_ms)] or len(
            report.bucket_counts
        ) != len(BOUNDS_MS):
            raise ValueError("histogram bounds differ from the controller's")
        key = f"{report.namespace}/{report.sla}"
        self.get(key).add(np.asarray(report.bucket_counts, dtype=np.int64), report.errors, now or time.time())


class Collector(sla_pb2_grpc.SlaCollectorServicer):
    def __init__(self, windows: Windows, on_report: Callable[[str], None] | None = None) -> None:
        self.windows = windows
        self.on_report = on_report
        self.reports = 0

    async def Report(self, request: sla_pb2.SlaReport, context: grpc.aio.ServicerContext) -> sla_pb2.ReportAck:
        try:
            self.windows.add_report(request)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        self.reports += 1
        if self.on_report is not None:
            self.on_report(f"{request.namespace}/{request.sla}")
        return sla_pb2.ReportAck()
