"""The scorer: a batch of `Work` in, one frozen `VerdictRecord` (and its `Detection`) per frame
out, on the model in the slot. The one place a station's frame meets its threshold: the detector
only scores (`Detector.score`), and each frame's `Detection` is judged here
(`Detection.judged`, whose verdict is `verdict.judge`) against the threshold of the camera or
request it came from; it is immutable from then on.
"""

from __future__ import annotations

import time

import numpy as np

from ...errors import UniadError
from ..detector import Detection
from ..record import VerdictRecord
from .inputs import Work
from .slot import ModelSlot

Scored = list[tuple[VerdictRecord, Detection | None]]


class Scorer:
    """Scores batches for the station named `station` with the slot's model."""

    def __init__(self, slot: ModelSlot, station: str) -> None:
        self.slot = slot
        self.station = station

    def score(self, batch: list[Work]) -> tuple[Scored, int]:
        """One backend batch; the record and detection of every frame, in order, and how many
        frames reached the model."""
        problems = [work.problem for work in batch]
        jobs = {
            i: (work.image, work.threshold)
            for i, work in enumerate(batch)
            if work.image is not None and work.problem is None
        }
        detections = self._predict(jobs, problems)
        done = time.perf_counter()
        scored: Scored = []
        for i, work in enumerate(batch):
            frame, trigger = work.frame, work.trigger
            detection = detections.get(i)
            if detection is None and problems[i] is not None:
                frame.error = problems[i]
            now = time.perf_counter()
            record = VerdictRecord.of(
                frame,
                detection,
                work.source,
                camera=work.camera,
                station=self.station,
                model=self.slot.model_id,
                class_name=work.class_name,
                part_id=work.part_id,
                postprocess_ms=(now - done) * 1e3,
                trigger_ms=None if trigger is None else (now - trigger.started) * 1e3,
            )
            scored.append((record, detection))
        return scored, len(jobs)

    def _predict(
        self, jobs: dict[int, tuple[np.ndarray, float | None]], problems: list[str | None]
    ) -> dict[int, Detection]:
        """One batch, each frame judged against its own threshold. If the batch fails (a
        16-bit frame without bit depth, a backend error), the frames are scored one by one so
        only the failing ones get ERROR records, with the reason in `problems`."""
        if not jobs:
            return {}
        detector = self.slot.detector
        index = list(jobs)
        images = [jobs[i][0] for i in index]
        thresholds = [jobs[i][1] for i in index]
        try:
            found = detector.score(images)
            return {i: d.judged(t) for i, d, t in zip(index, found, thresholds, strict=True)}
        except Exception:  # noqa: BLE001 (retried one by one below, where the reason is kept)
            pass
        results: dict[int, Detection] = {}
        for i in index:
            try:
                results[i] = detector.score([jobs[i][0]])[0].judged(jobs[i][1])
            except UniadError as exc:
                problems[i] = str(exc)
            except Exception as exc:  # a backend error is an ERROR verdict, never OK
                problems[i] = f"backend error: {type(exc).__name__}: {exc}"
        return results
