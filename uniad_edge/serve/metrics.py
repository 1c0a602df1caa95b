"""Prometheus metrics of one service, in its own registry (two apps in one process never clash).

The metrics are a sink of the station. Per camera (the HTTP API counts as camera "api"):
frames scored, NG and ERROR counts, verdict latency, dropped frames and reconnects; the
station's sinks report what they could not write as `uniad_station_outputs`; for the service:
queue depth, batch sizes and requests refused because the queue was full. Capture counters live
in the camera objects and are read at scrape time, so they are never out of step with what the
cameras report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..runtime.sinks import Sink, Verdict

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class _CaptureCollector(Collector):
    """Dropped frames, reconnects and the station's sink counters, read at scrape time."""

    def __init__(
        self,
        read: Callable[[], Mapping[str, Mapping[str, int]]],
        outputs: Callable[[], Mapping[str, int]],
    ) -> None:
        self._read = read
        self._outputs = outputs

    def collect(self) -> Iterable[Metric]:
        stats = self._read()
        families = {
            "dropped": CounterMetricFamily(
                "uniad_dropped_frames", "Live frames replaced before scoring", labels=["camera"]
            ),
            "reconnects": CounterMetricFamily(
                "uniad_reconnects", "Times a camera was reopened", labels=["camera"]
            ),
        }
        for camera, values in stats.items():
            for key, family in families.items():
                family.add_metric([camera], float(values.get(key, 0)))
        yield from families.values()
        outputs = GaugeMetricFamily(
            "uniad_station_outputs",
            "The station's sink counters (images/log records not written, MQTT dropped, ...)",
            labels=["what"],
        )
        for what, value in self._outputs().items():
            outputs.add_metric([what], float(value))
        yield outputs


class ServiceMetrics(Sink):
    """The service's counters, gauges and histograms; counts every verdict as a sink."""

    name = "metrics"

    def __init__(
        self,
        capture_stats: Callable[[], Mapping[str, Mapping[str, int]]],
        station_outputs: Callable[[], Mapping[str, int]],
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.frames = Counter("uniad_frames_scored", "Images scored", ["camera"], registry=r)
        self.ng = Counter("uniad_ng", "Images judged NG", ["camera"], registry=r)
        self.errors = Counter(
            "uniad_errors",
            "ERROR verdicts: frame not prepared, backend error, non-finite map or score",
            ["camera"],
            registry=r,
        )
        self.latency = Histogram(
            "uniad_verdict_latency_seconds",
            "From frame capture (or request arrival) to verdict",
            ["camera"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge("uniad_queue_depth", "Requests waiting to be scored", registry=r)
        self.rejected = Counter(
            "uniad_queue_rejected", "Requests refused with 503 (queue full)", registry=r
        )
        self.batch_size = Histogram(
            "uniad_batch_size", "Images per backend call", buckets=BATCH_BUCKETS, registry=r
        )
        r.register(_CaptureCollector(capture_stats, station_outputs))

    def emit(self, verdict: Verdict) -> None:
        """Count one verdict; its latency runs from capture (or request arrival) to now."""
        record, camera = verdict.record, verdict.camera
        self.frames.labels(camera).inc()
        if record["verdict"] == "NG":
            self.ng.labels(camera).inc()
        elif record["verdict"] == "ERROR":
            self.errors.labels(camera).inc()
        self.latency.labels(camera).observe(max(time.time() - record["timestamp"], 0.0))

    def observe_batch(self, size: int, depth: int) -> None:
        self.batch_size.observe(size)
        self.queue_depth.set(depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)
