"""One verdict record and one set of counters, read by every consumer.

`VerdictRecord` is built once per frame (a camera's or an API request's) by the station's
scorer and never changed afterwards: the JSONL log, MQTT, OPC UA, the event stream, `/metrics`
and serve's answers all read its fields. It is a read-only `Mapping` too (`record["score"]`),
whose keys are the JSONL schema, so code that reads a record as a dict keeps working. What a
sink produces about a verdict (the evidence files) travels beside it on the `Verdict`, not in
it.

A capture source attaches its own per-frame facts (a GigE camera's `camera_frame_id` and
`camera_timestamp`) through `Frame.facts`; they land in `capture` and in the log line, without
a new field here per source.

`VerdictCounts` is the one counting rule: every record is exactly one of OK, NG, ERROR (not
prepared, not scored, non-finite: never OK) or UNSCORED (scored, but the model ships no
threshold and none was given, so there is no verdict). The station counts each record once,
when it is built; the summary, `/metrics`, the event stream, OPC UA and MQTT read those counts.
`dropped` (live frames replaced before scoring) and `lost` (frames a source knows it never
delivered, e.g. incomplete GigE frames) are the capture side, read from the camera's stream.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from .capture import Frame
from .detector import Detection
from .verdict import ERROR, NG, OK

UNSCORED = "UNSCORED"  # the kind of a record whose `verdict` is None (no threshold)
KINDS = (OK, NG, ERROR, UNSCORED)
MESSAGE = "message"  # field metadata: the field goes into MQTT messages
ANSWER = "answer"  # field metadata: the field goes into serve's answers


def _tag(*uses: str) -> dict[str, bool]:
    return dict.fromkeys(uses, True)


@dataclass(frozen=True, eq=False)
class VerdictRecord(Mapping[str, Any]):
    """One frame's verdict, as the log, MQTT, OPC UA and the API see it (immutable).

    `verdict` is "OK", "NG", "ERROR" or None (no threshold); `is_ok` is True only for "OK".
    An ERROR record says why in `error`: the frame could not be prepared or scored (then
    `score` is None and `latency_ms` holds only `capture`), or its score or map is not finite
    (then `score` is None too: JSON has no NaN)."""

    station: str | None = field(metadata=_tag(MESSAGE))
    camera: str | None = field(metadata=_tag(MESSAGE))
    index: int = field(metadata=_tag(MESSAGE))
    timestamp: float = field(metadata=_tag(MESSAGE))
    source: str
    name: str = field(metadata=_tag(MESSAGE))
    model: str | None = field(metadata=_tag(MESSAGE, ANSWER))
    score: float | None = field(metadata=_tag(MESSAGE, ANSWER))
    normalized_score: float | None = field(metadata=_tag(MESSAGE, ANSWER))
    threshold: float | None = field(metadata=_tag(MESSAGE, ANSWER))
    verdict: str | None = field(metadata=_tag(MESSAGE, ANSWER))
    error: str | None = field(metadata=_tag(MESSAGE, ANSWER))
    latency_ms: Mapping[str, float]
    class_name: str | None = field(default=None, metadata=_tag(ANSWER))
    part_id: str | None = field(default=None, metadata=_tag(MESSAGE, ANSWER))
    trigger_ms: float | None = None
    capture: Mapping[str, Any] = field(default_factory=dict)  # a source's per-frame facts

    @classmethod
    def of(
        cls,
        frame: Frame,
        detection: Detection | None,
        source: str,
        *,
        camera: str | None = None,
        station: str | None = None,
        model: str | None = None,
        class_name: str | None = None,
        part_id: str | None = None,
        postprocess_ms: float = 0.0,
        trigger_ms: float | None = None,
    ) -> VerdictRecord:
        """The record of `frame` scored as `detection` (None: it could not be scored, and
        `frame.error` says why)."""
        common: dict[str, Any] = {
            "station": station,
            "camera": camera,
            "index": frame.index,
            "timestamp": frame.timestamp,
            "source": source,
            "name": frame.name,
            "model": model,
            "class_name": class_name,
            "part_id": part_id,
            "trigger_ms": None if trigger_ms is None else round(trigger_ms, 3),
            "capture": dict(frame.facts),
        }
        capture_ms = round(frame.capture_ms, 3)
        if detection is None:
            return cls(
                **common,
                score=None,
                normalized_score=None,
                threshold=None,
                verdict=ERROR,
                error=frame.error or "not scored",
                latency_ms={"capture": capture_ms},
            )
        return cls(
            **common,
            score=detection.score if math.isfinite(detection.score) else None,
            normalized_score=detection.normalized_score,
            threshold=detection.threshold,
            verdict=detection.verdict,
            error=detection.error,
            latency_ms={
                "capture": capture_ms,
                "preprocess": round(detection.preprocess_ms, 3),
                "inference": round(detection.inference_ms, 3),
                "postprocess": round(postprocess_ms, 3),
            },
        )

    @property
    def is_ok(self) -> bool:
        return self.verdict == OK and self.error is None

    @property
    def kind(self) -> str:
        """OK, NG, ERROR or UNSCORED: which counter this record goes to (fail safe: a record
        with an `error` is ERROR whatever its verdict says)."""
        if self.error is not None or self.verdict == ERROR:
            return ERROR
        if self.verdict is None:
            return UNSCORED
        return OK if self.verdict == OK else NG

    @property
    def time(self) -> str:
        return datetime.fromtimestamp(self.timestamp, timezone.utc).isoformat()

    @property
    def scored(self) -> bool:
        """Whether the frame reached the model (its latencies are then complete)."""
        return "inference" in self.latency_ms

    def to_dict(self) -> dict[str, Any]:
        """The JSONL line (one schema for cameras and API requests); optional fields that are
        unset are left out, as the log always did."""
        out: dict[str, Any] = {}
        if self.station is not None:
            out["station"] = self.station
        if self.camera is not None:
            out["camera"] = self.camera
        out |= {
            "index": self.index,
            "timestamp": self.timestamp,
            "time": self.time,
            "source": self.source,
            "name": self.name,
        }
        if self.model is not None:
            out["model"] = self.model
        out |= {
            "score": self.score,
            "normalized_score": self.normalized_score,
            "threshold": self.threshold,
            "verdict": self.verdict,
            "is_ok": self.is_ok,
        }
        if self.error is not None:
            out["error"] = self.error
        out["latency_ms"] = dict(self.latency_ms)
        out["class_name"] = self.class_name
        out["part_id"] = self.part_id
        if self.trigger_ms is not None:
            out["trigger_ms"] = self.trigger_ms
        return out | dict(self.capture)

    def fields_for(self, use: str) -> dict[str, Any]:
        """The fields tagged `use` (MESSAGE: MQTT; ANSWER: serve's answers), plus `is_ok` and
        `time`; `error` only when there is one."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get(use)}
        out["is_ok"] = self.is_ok
        if use == MESSAGE:
            out["time"] = self.time
            out |= self.capture
        if self.error is None:
            out.pop("error", None)
        return out

    # -- read-only Mapping over the JSONL schema ------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    @property
    def _dict(self) -> dict[str, Any]:
        cached = self.__dict__.get("_cache")
        if cached is None:
            cached = self.to_dict()
            object.__setattr__(self, "_cache", cached)
        return cached


@dataclass
class VerdictCounts:
    """OK, NG, ERROR and UNSCORED records of one camera (or the API), plus the capture side's
    dropped and lost frames; the one set of counters every consumer reads."""

    ok: int = 0
    ng: int = 0
    error: int = 0
    unscored: int = 0
    dropped: int = 0  # live frames replaced by a newer one before scoring
    lost: int = 0  # frames the source reports it never delivered (incomplete, missing)

    def add(self, record: VerdictRecord) -> None:
        kind = record.kind
        if kind == OK:
            self.ok += 1
        elif kind == NG:
            self.ng += 1
        elif kind == UNSCORED:
            self.unscored += 1
        else:
            self.error += 1

    @property
    def total(self) -> int:
        """Records counted (every frame scored or refused; not dropped or lost frames)."""
        return self.ok + self.ng + self.error + self.unscored

    def by_kind(self) -> dict[str, int]:
        """{"OK", "NG", "ERROR", "UNSCORED", "total"}: the event stream's and serve's form."""
        return {OK: self.ok, NG: self.ng, ERROR: self.error, UNSCORED: self.unscored} | {
            "total": self.total
        }

    def snapshot(self) -> VerdictCounts:
        return VerdictCounts(**self.as_dict())

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
