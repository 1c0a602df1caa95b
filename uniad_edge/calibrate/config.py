"""`calibrate` settings; every default lives here (the CLI passes None through)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..artifacts import WARN_FALSE_ALARM_RATE, url_scheme
from ..errors import UniadError
from ..metadata import DEFAULT_MAX_BATCH
from ..redact import redact_url
from .policy import Policy
from .stats import CONFIDENCE


@dataclass
class CalibrateConfig:
    """One calibration: exactly one of target_fpr, target_recall, f1 (or rollback).

    `force` rewrites a read-only model; `warn_false_alarm_rate` is the false-alarm rate on the
    calibration images above which a chosen threshold is warned about. A served model (a
    Triton URL) has no file to put its thresholds beside: `thresholds` is the line's file the
    station file names for it (`thresholds = ...`), and only then can it be calibrated."""

    model: Path | str
    data: Path | None = None
    target_fpr: float | None = None
    target_recall: float | None = None
    f1: bool = False
    classes: list[str] | None = None
    split: str = "test"
    dry_run: bool = False
    rollback: bool = False
    backend: str = "auto"
    batch_size: int = DEFAULT_MAX_BATCH
    confidence: float = CONFIDENCE
    force: bool = False
    warn_false_alarm_rate: float = WARN_FALSE_ALARM_RATE
    thresholds: Path | None = None

    def __post_init__(self) -> None:
        served = url_scheme(self.model) is not None
        self.model = str(self.model) if served else Path(self.model)
        self.thresholds = None if self.thresholds is None else Path(self.thresholds)
        if served and self.thresholds is None:
            raise UniadError(
                f"{redact_url(str(self.model))} is a served model: pass --thresholds FILE, the "
                "line's thresholds file its station file names (thresholds = ...)"
            )
        if not served and self.thresholds is not None:
            raise UniadError(
                f"--thresholds is for a served model (a URL); the thresholds of {self.model} "
                "live beside it"
            )
        self.data = None if self.data is None else Path(self.data)
        if self.batch_size < 1:
            raise UniadError(f"--batch-size must be >= 1, got {self.batch_size}")
        if not 0 < self.confidence < 1:
            raise UniadError(f"confidence must be in (0, 1), got {self.confidence}")
        chosen = [self.target_fpr is not None, self.target_recall is not None, self.f1]
        if self.rollback:
            if any(chosen) or self.data is not None:
                raise UniadError("--rollback restores the previous thresholds; give no policy/data")
            return
        if sum(chosen) != 1:
            raise UniadError("choose exactly one policy: --target-fpr P, --target-recall R or --f1")
        if self.data is None:
            raise UniadError("--data is required: a folder of validation images to score")

    @property
    def served(self) -> bool:
        """A model behind a URL, whose line file is `thresholds`."""
        return self.thresholds is not None

    @property
    def lock_target(self) -> Path | str:
        """What one writer locks: the model file, or a served model's thresholds file."""
        return self.thresholds if self.thresholds is not None else self.model

    def policy(self) -> Policy:
        if self.target_fpr is not None:
            return Policy("target-fpr", self.target_fpr)
        if self.target_recall is not None:
            return Policy("target-recall", self.target_recall)
        return Policy("f1")
