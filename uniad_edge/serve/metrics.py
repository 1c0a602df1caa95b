"""Prometheus metrics of one service, in its own registry (two apps in one process never clash).

The metrics are a sink of the station (for verdict latency). Per camera (the HTTP API counts as
camera "api"): records, OK, NG, ERROR and UNSCORED counts, dropped and lost frames, all read at
scrape time from the station's one `VerdictCounts` per camera (so they never disagree with the
summary, the event stream or OPC UA), plus reconnects and verdict latency; the station's sinks
report what they could not write as `uniad_station_outputs`; for the service: queue depth,
batch sizes and requests refused because the queue was full.
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

from ..runtime.record import VerdictCounts
from ..runtime.sinks import Sink, Verdict

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


# VerdictCounts field -> (metric name, help); `uniad_frames_scored` is every record
COUNTS = {
    "ok": ("uniad_ok", "Images judged OK"),
    "ng": ("uniad_ng", "Images judged NG"),
    "error": (
        "uniad_errors",
        "ERROR verdicts: frame not prepared, backend error, non-finite map or score",
    ),
    "unscored": ("uniad_unscored", "Images scored without a verdict (no threshold)"),
    "dropped": ("uniad_dropped_frames", "Live frames replaced before scoring"),
    "lost": ("uniad_lost_frames", "Frames the camera never delivered (incomplete, missing)"),
}


class _StationCollector(Collector):
    """The station's verdict counts, reconnects and sink counters, read at scrape time."""

    def __init__(
        self,
        counts: Callable[[], Mapping[str, VerdictCounts]],
        read: Callable[[], Mapping[str, Mapping[str, int]]],
        outputs: Callable[[], Mapping[str, int]],
    ) -> None:
        self._counts = counts
        self._read = read
        self._outputs = outputs

    def collect(self) -> Iterable[Metric]:
        counts = self._counts()
        frames = CounterMetricFamily(
            "uniad_frames_scored", "Images scored (every record)", labels=["camera"]
        )
        families = {
            key: CounterMetricFamily(*text, labels=["camera"]) for key, text in COUNTS.items()
        }
        for camera, values in counts.items():
            frames.add_metric([camera], float(values.total))
            for key, family in families.items():
                family.add_metric([camera], float(getattr(values, key)))
        yield frames
        yield from families.values()
        reconnects = CounterMetricFamily(
            "uniad_reconnects", "Times a camera was reopened", labels=["camera"]
        )
        for camera, values in self._read().items():
            reconnects.add_metric([camera], float(values.get("reconnects", 0)))
        yield reconnects
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
        counts: Callable[[], Mapping[str, VerdictCounts]],
        capture_stats: Callable[[], Mapping[str, Mapping[str, int]]],
        station_outputs: Callable[[], Mapping[str, int]],
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
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
        r.register(_StationCollector(counts, capture_stats, station_outputs))

    def emit(self, verdict: Verdict) -> None:
        """One verdict's latency, from capture (or request arrival) to now."""
        age = time.time() - verdict.record.timestamp
        self.latency.labels(verdict.camera).observe(max(age, 0.0))

    def observe_batch(self, size: int, depth: int) -> None:
        self.batch_size.observe(size)
        self.queue_depth.set(depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)
