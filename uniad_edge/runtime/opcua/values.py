"""The OPC UA address space as data: which variables a camera and the station publish, with
their OPC UA types, and a camera's values taken from one verdict record.

One place for the browse names: the server builds its nodes from these tables and the README
documents them.
"""

from __future__ import annotations

import math
from typing import Any

from ..record import VerdictCounts, VerdictRecord

# browse name -> OPC UA built-in type; node ids are ns=<NAMESPACE_URI>;s=Cameras.<camera>.<name>
CAMERA_VARIABLES: dict[str, str] = {
    "Verdict": "String",  # OK, NG, ERROR (not a trusted result) or UNSCORED (no threshold)
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
    "UnscoredCount": "UInt64",
    "LostCount": "UInt64",  # frames the camera never delivered whole (incomplete, missing)
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


def finite_or_nan(value: Any) -> float:
    """OPC UA Doubles: a missing or non-finite score reads NaN (never a plausible number)."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.nan


def camera_values(record: VerdictRecord, counts: VerdictCounts) -> dict[str, Any]:
    """All of a camera's per-verdict variables (browse name -> Python value) from one record
    and the station's counts just after it."""
    return {
        "Verdict": record.kind,
        "IsOK": record.is_ok,
        "Score": finite_or_nan(record.score),
        "NormalizedScore": finite_or_nan(record.normalized_score),
        "Threshold": finite_or_nan(record.threshold),
        "PartId": record.part_id or "",
        "SourceTimestamp": float(record.timestamp),
        "FrameIndex": int(record.index),
        "OkCount": counts.ok,
        "NgCount": counts.ng,
        "ErrorCount": counts.error,
        "UnscoredCount": counts.unscored,
        "LostCount": counts.lost,
        "ModelId": record.model or "",
    }
