"""The OPC UA address space as data: which variables a camera and the station publish, with
their OPC UA types, and a camera's values taken from one verdict record.

One place for the browse names: the server builds its nodes from these tables and the README
documents them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# browse name -> OPC UA built-in type; node ids are ns=<NAMESPACE_URI>;s=Cameras.<camera>.<name>
CAMERA_VARIABLES: dict[str, str] = {
    "Verdict": "String",  # OK, NG or ERROR (anything that is not a trusted verdict)
    "IsOK": "Boolean",
    "Score": "Double",  # NaN when the frame could not be scored
    "NormalizedScore": "Double",
    "Threshold": "Double",
    "PartId": "String",  # "" when the frame was not triggered with a part id
    "SourceTimestamp": "DateTime",  # the frame's capture time (also every value's source time)
    "FrameIndex": "UInt64",
    "OkCount": "UInt64",
    "NgCount": "UInt64",
    "ErrorCount": "UInt64",
    "ModelId": "String",  # the model that scored this verdict
    "State": "String",  # capturing, reconnecting or stopped (changes on its own, not per verdict)
}
VERDICT_VARIABLES = tuple(name for name in CAMERA_VARIABLES if name != "State")
# ns=<NAMESPACE_URI>;s=Station.<name>
STATION_VARIABLES: dict[str, str] = {
    "Name": "String",
    "ModelId": "String",  # the model scoring now
    "ThresholdProvenance": "String",
    "StartTime": "DateTime",
    "Uptime": "Double",  # seconds since StartTime, updated every second
}
CAMERA_STATES = {"connected": "capturing", "reconnecting": "reconnecting"}  # else "stopped"


def camera_state(status: str) -> str:
    """The OPC UA `State` of a camera from the station's status words."""
    return CAMERA_STATES.get(status, "stopped")


def verdict_kind(record: dict[str, Any]) -> str:
    """OK, NG, or ERROR for every record that is not a trusted OK/NG (fail safe)."""
    verdict = record.get("verdict")
    if "error" in record or verdict not in ("OK", "NG"):
        return "ERROR"
    return str(verdict)


def finite_or_nan(value: Any) -> float:
    """OPC UA Doubles: a missing or non-finite score reads NaN (never a plausible number)."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.nan


@dataclass
class VerdictCounts:
    """A camera's OK/NG/ERROR counters, kept by whoever sees every verdict in order."""

    ok: int = 0
    ng: int = 0
    error: int = 0

    def add(self, kind: str) -> None:
        if kind == "OK":
            self.ok += 1
        elif kind == "NG":
            self.ng += 1
        else:
            self.error += 1


def camera_values(record: dict[str, Any], counts: VerdictCounts) -> dict[str, Any]:
    """All of a camera's per-verdict variables (browse name -> Python value) from one record."""
    kind = verdict_kind(record)
    return {
        "Verdict": kind,
        "IsOK": kind == "OK",
        "Score": finite_or_nan(record.get("score")),
        "NormalizedScore": finite_or_nan(record.get("normalized_score")),
        "Threshold": finite_or_nan(record.get("threshold")),
        "PartId": str(record.get("part_id") or ""),
        "SourceTimestamp": float(record["timestamp"]),
        "FrameIndex": int(record["index"]),
        "OkCount": counts.ok,
        "NgCount": counts.ng,
        "ErrorCount": counts.error,
        "ModelId": str(record.get("model") or ""),
    }
