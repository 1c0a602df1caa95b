"""Evidence sink: NG frames (or every frame, per camera policy) and overlays, atomically, under
each verdict's own name; the verdict then names the files (`Verdict.evidence`, in the log line
as `"evidence"`)."""

from __future__ import annotations

import numpy as np

from ..detector import Detection
from ..recorder import EvidenceSaver
from ..retention import parse_retention
from .base import PauseOnError, Sink, SinkContext, Verdict


class EvidenceSink(Sink):
    name = "images"

    def __init__(self, saver: EvidenceSaver, retry_s: float) -> None:
        self.saver = saver
        self.guard = PauseOnError(f"saving images to {saver.folder}", retry_s)

    def emit(self, verdict: Verdict) -> None:
        detection, image = verdict.detection, verdict.image
        if detection is None or image is None or verdict.save == "none":
            return
        if verdict.save == "ng" and not detection.is_anomalous:
            return
        self.guard.attempt(lambda: self._save(verdict, detection, image))

    def _save(self, verdict: Verdict, detection: Detection, image: np.ndarray) -> None:
        """Save, then tell the later sinks the files' names (beside the frozen record)."""
        verdict.attach_evidence(self.saver.save(verdict.evidence_stem, detection, image))

    def summary(self) -> dict[str, int]:
        counts = {"images saved": self.saver.saved, "images not saved": self.guard.not_written}
        if self.saver.retention is not None:
            counts["evidence removed (--keep-evidence)"] = self.saver.removed
        return counts


def from_context(context: SinkContext) -> EvidenceSink | None:
    config = context.config
    if config.save_dir is None:
        return None
    keep = config.keep_evidence
    retention = None if keep is None else parse_retention(str(keep))
    return EvidenceSink(EvidenceSaver(config.save_dir, retention), config.write_retry_s)
