"""`POST /v1/thresholds`: set or roll back the line's thresholds of the model scoring now.

Only the line's thresholds file is written, exactly as `calibrate` writes it (atomically, the
replaced set kept in its history, the weights it belongs to named); the model file is never
touched, so ONNX models, engines and a Triton model whose station file names its thresholds
file are updated alike. The station's slot picks the file up before its next batch and its model
id then names the new thresholds. A set given by hand is recorded as such (`provenance.source`
"manual", with the date and the client's note): `info` and the dashboard say so instead of
calling it calibrated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..line_thresholds import now
from ..metadata import MANUAL, Thresholds

KEYS = {"global", "per_class", "note", "rollback"}
NOTE_CHARS = 200  # a note is for people reading `info`, not a document store
USAGE = (
    'send JSON {"global": 12.5, "per_class": {"wood": 9.0}, "note": "..."} '
    '(each key optional, at least one threshold) or {"rollback": true}'
)


class ThresholdsRefused(Exception):
    """A request that writes nothing; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def requested(body: Any, before: Thresholds, classes: Sequence[str]) -> Thresholds:
    """The set `body` asks for, with `before` appended to its history (rolled back: the newest
    history entry restored), or `ThresholdsRefused` naming what is wrong."""
    if not isinstance(body, dict) or not body or set(body) - KEYS:
        raise ThresholdsRefused(422, USAGE)
    if body.get("rollback") is True:
        if set(body) != {"rollback"}:
            raise ThresholdsRefused(422, USAGE)
        try:
            return before.rolled_back()
        except ValueError as exc:
            raise ThresholdsRefused(409, str(exc)) from None
    per_class = body.get("per_class") or {}
    note = body.get("note", "")
    if not isinstance(per_class, dict) or not isinstance(note, str) or len(note) > NOTE_CHARS:
        raise ThresholdsRefused(422, f"{USAGE}; a note is at most {NOTE_CHARS} characters")
    unknown = sorted(set(per_class) - set(classes)) if classes else sorted(per_class)
    if unknown:
        known = ", ".join(classes) or "none (the model has no classes)"
        raise ThresholdsRefused(422, f"class(es) {', '.join(unknown)} not in the model: {known}")
    when = now()
    try:
        new = Thresholds(
            global_=_number(body.get("global")),
            per_class={name: _number(value) for name, value in per_class.items()},
            rule="set by hand through POST /v1/thresholds",
            provenance={"source": MANUAL, "date": when, "note": note},
        )
    except (TypeError, ValueError) as exc:
        raise ThresholdsRefused(422, f"{exc}; {USAGE}") from None
    if new.empty:
        raise ThresholdsRefused(422, f"no threshold given; {USAGE}")
    return before.superseded_by(new, when)


def _number(value: Any) -> float | None:
    """A JSON number (None stays None); booleans and strings are refused, not coerced."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"a threshold must be a number, got {value!r}")
    return float(value)
