"""Evidence sink: NG frames (or every frame, per camera policy) and overlays, atomically."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..recorder import EvidenceSaver
from .base import PauseOnError, Sink, Verdict

if TYPE_CHECKING:
    from ..station import Station


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
        frame = verdict.frame
        self.guard.attempt(lambda: self.saver.save(frame, detection, image, verdict.camera))

    def summary(self) -> dict[str, int]:
        return {"images saved": self.saver.saved, "images not saved": self.guard.not_written}


def from_station(station: Station) -> EvidenceSink | None:
    config = station.config
    if config.save_dir is None:
        return None
    return EvidenceSink(EvidenceSaver(config.save_dir), config.write_retry_s)
