"""The one rule that turns a score and a threshold into a verdict, and the one rule for which
threshold a camera or request uses. The detector only scores; the station's scorer and the plain
Python API (`Detector.predict`) judge through `judge`, so no second copy can drift.
"""

from __future__ import annotations

import math

from ..errors import UniadError
from ..metadata import ModelMetadata, Thresholds

OK = "OK"
NG = "NG"
ERROR = "ERROR"


def judge(score: float, threshold: float | None, error: str | None = None) -> str | None:
    """ "OK", "NG", "ERROR" or None, fail safe: a result with an `error` or a non-finite score
    (a NaN compares False with every threshold and would pass as OK) is ERROR; no threshold is
    None (unscored), never a guess; NG when score >= threshold."""
    if error is not None or not math.isfinite(score):
        return ERROR
    if threshold is None:
        return None
    return NG if score >= threshold else OK


def resolve_threshold(
    metadata: ModelMetadata,
    thresholds: Thresholds,
    class_name: str | None,
    override: float | None,
) -> tuple[float | None, str]:
    """The threshold a camera or request of `class_name` uses and where it came from
    (`Thresholds.resolve`), refusing a class the model was not trained on."""
    known = metadata.class_names
    if class_name is not None and known and class_name not in known:
        raise UniadError(
            f"class {class_name!r} is not one this model was trained on: {', '.join(known)}"
        )
    try:
        return thresholds.resolve(class_name, override)
    except ValueError as exc:
        raise UniadError(str(exc)) from None
