"""How long a station keeps what grows without bound on a line that runs for months: the NG
evidence folder (`--keep-evidence`, by count, age or size) and the JSONL log's size-based
rotation (`--log-max-mb`, `--log-keep`). The settings live in `StationConfig`; the writers
(`recorder.JsonlLog`, `recorder.EvidenceSaver`) enforce them as they write."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UniadError

UNITS_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
UNITS_BYTES = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12}
TERM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
EXAMPLES = "e.g. 5000 (newest verdicts), 30d (days; also h, m, s), 20GB (also MB, TB)"


@dataclass(frozen=True)
class Retention:
    """Limits on kept evidence; each set one removes the oldest verdicts' files beyond it."""

    count: int | None = None
    age_s: float | None = None
    size_bytes: int | None = None


def parse_retention(text: str) -> Retention:
    """`--keep-evidence`: one or more of COUNT, AGE (30d) and SIZE (20GB), comma-separated."""
    limits: dict[str, float] = {}
    for term in str(text).split(","):
        match = TERM.match(term)
        unit = match.group(2).lower() if match else ""
        if match is None or (unit and unit not in UNITS_S and unit not in UNITS_BYTES):
            raise UniadError(f"--keep-evidence {text!r}: not a count, age or size ({EXAMPLES})")
        number = float(match.group(1))
        if not unit:
            key, value = "count", number
        elif unit in UNITS_S:
            key, value = "age_s", number * UNITS_S[unit]
        else:
            key, value = "size_bytes", number * UNITS_BYTES[unit]
        if value <= 0 or key in limits:
            raise UniadError(f"--keep-evidence {text!r}: each limit once and above 0 ({EXAMPLES})")
        limits[key] = value
    return Retention(
        count=int(limits["count"]) if "count" in limits else None,
        age_s=limits.get("age_s"),
        size_bytes=int(limits["size_bytes"]) if "size_bytes" in limits else None,
    )
