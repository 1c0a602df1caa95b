"""The Python API: `Detector("export/model.onnx")(frame)` -> a `Detection` with score and verdict.

The detector scores (`Detector.score`); a verdict comes only from `verdict.judge` on a
`Detection` judged against a threshold (`Detection.judged`): the station's scorer judges each
frame with its camera's or request's threshold, `predict` with this detector's default.

Frames of any size and of the common camera formats go in; the runtime only converts them to
uint8 BGR and resizes them (bilinear) to the model's input, since normalisation and layout live
inside the exported graph.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from .. import line_thresholds
from ..errors import UniadError
from ..line_thresholds import InForce
from ..metadata import (
    DEFAULT_MAX_BATCH,
    ModelMetadata,
    Thresholds,
    describe_provenance,
)
from .backends.base import Backend, Closeable
from .backends.registry import load_backend
from .frame_fit import frame_problem
from .frames import to_bgr8
from .prepare import FramePreparer, check_frame_size
from .verdict import ERROR, NG, judge, resolve_threshold

OK_COLOUR = (60, 200, 60)
NG_COLOUR = (40, 40, 230)
UNKNOWN_COLOUR = (200, 200, 200)

NON_FINITE_SCORE = "non-finite score"
NON_FINITE_MAP = "non-finite map"


@dataclass(frozen=True)
class Detection:
    """One frame's result, judged once against the threshold of the camera or request it came
    from (immutable: nothing re-judges it later).

    `threshold` None means the model ships none and none was given: then `normalized_score`,
    `is_anomalous` and `verdict` are None rather than a guess. `error` says why the result
    cannot be trusted (a non-finite score or map, a frame the model cannot judge: frame_fit);
    the verdict is then "ERROR", never "OK".
    """

    score: float
    threshold: float | None
    model_map: np.ndarray = field(repr=False)
    frame_size: tuple[int, int] = (0, 0)
    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    error: str | None = None
    roi: tuple[int, int, int, int] | None = None  # (x, y, w, h) the map covers; None: all

    @property
    def normalized_score(self) -> float | None:
        """score / threshold: 1.0 is the decision boundary whatever the model's score scale."""
        if self.threshold is None or self.error is not None:
            return None
        return self.score / self.threshold

    @property
    def is_anomalous(self) -> bool | None:
        """True when NG (score >= threshold) or ERROR: whatever is not OK is treated as a reject."""
        verdict = self.verdict
        return None if verdict is None else verdict in (NG, ERROR)

    @property
    def verdict(self) -> str | None:
        """ "OK", "NG", "ERROR" (untrusted result), or None (no threshold): `verdict.judge`."""
        return judge(self.score, self.threshold, self.error)

    def judged(self, threshold: float | None) -> Detection:
        """This result judged against `threshold` (a new, equally immutable Detection)."""
        return replace(self, threshold=threshold)

    @property
    def is_ok(self) -> bool:
        """True only for an OK verdict: NG, ERROR and no verdict all count as not OK."""
        return self.verdict == "OK"

    @cached_property
    def anomaly_map(self) -> np.ndarray:
        """float32 map at the frame's size (bilinear from the model's output), computed on use."""
        h, w = self.frame_size
        if self.roi is not None:  # a graph that crops (`export --roi`): zero outside the crop
            x, y, rw, rh = self.roi
            full = np.zeros((h, w), np.float32)
            full[y : y + rh, x : x + rw] = cv2.resize(
                self.model_map, (rw, rh), interpolation=cv2.INTER_LINEAR
            )
            return full
        if self.model_map.shape == (h, w):
            return self.model_map
        return cv2.resize(self.model_map, (w, h), interpolation=cv2.INTER_LINEAR)

    def heatmap(self) -> np.ndarray:
        """JET colour map at frame size. Scaled so that 2x threshold is full red, which keeps
        colours comparable between frames; per-frame min-max scaling would paint good parts red."""
        top = 2.0 * self.threshold if self.threshold else float(self.anomaly_map.max()) or 1.0
        scaled = cv2.convertScaleAbs(self.anomaly_map, alpha=255.0 / top)
        return cv2.applyColorMap(scaled, cv2.COLORMAP_JET)

    def overlay(self, frame: np.ndarray, alpha: float = 0.45) -> np.ndarray:
        """A new image: `frame` blended with the heatmap, verdict and score written top-left."""
        image = to_bgr8(frame)
        if image.shape[:2] != self.frame_size:
            raise UniadError(
                f"overlay frame is {image.shape[1]}x{image.shape[0]} but the detection was made "
                f"on a {self.frame_size[1]}x{self.frame_size[0]} frame"
            )
        out = cv2.addWeighted(image, 1.0 - alpha, self.heatmap(), alpha, 0.0)
        if self.verdict == ERROR:
            text, colour = f"{ERROR} {self.error or NON_FINITE_SCORE}", NG_COLOUR
        elif self.verdict is None:
            text, colour = f"score {self.score:.3g}", UNKNOWN_COLOUR
        else:
            colour = NG_COLOUR if self.is_anomalous else OK_COLOUR
            text = f"{self.verdict} {self.normalized_score:.2f}"
        scale = max(0.4, min(out.shape[:2]) / 400.0)
        thickness = max(1, round(2 * scale))
        origin = (int(8 * scale), int(28 * scale))
        cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2)
        cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness)
        return out


def untrusted(score: float, model_map: np.ndarray) -> str | None:
    """Why a result cannot be trusted (a float16 overflow, a broken engine), or None: a NaN
    score compares False with every threshold and would otherwise pass as OK."""
    if not math.isfinite(score):
        return NON_FINITE_SCORE
    if not np.isfinite(model_map).all():
        return NON_FINITE_MAP
    return None


class Detector(Closeable):
    """Score BGR frames with an exported UniAD model (ONNX, TensorRT engine or checkpoint).

    Its thresholds are the line's (`<model>.thresholds.json` beside a model file, or the file
    given as `thresholds_file`), else the model's export-time defaults (`line_thresholds`);
    `use_thresholds` replaces them without reopening the model.
    Calls are serialised by a lock: the input batch buffer is allocated once and reused.
    """

    def __init__(
        self,
        model: str | Path | Backend,
        *,
        backend: str | None = "auto",
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        class_name: str | None = None,
        threshold: float | None = None,
        bit_depth: int | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        thresholds_file: str | Path | None = None,
    ) -> None:
        if isinstance(model, Backend):
            self.backend = model
            home = thresholds_file
        else:
            self.backend = load_backend(model, backend, providers=providers, threads=threads)
            local = "://" not in str(model)
            home = thresholds_file or (line_thresholds.thresholds_path(model) if local else None)
        self.metadata: ModelMetadata = self.backend.metadata
        self.in_force = line_thresholds.in_force(
            self.metadata, Path(home) if home is not None else None
        )
        self.class_name = class_name
        self.threshold_override = threshold
        self.threshold = self._default_threshold()
        if bit_depth is not None and not 9 <= bit_depth <= 16:
            raise UniadError(
                f"bit_depth applies to uint16 frames and must be 9..16, got {bit_depth}"
            )
        self.bit_depth = bit_depth
        self.static_batch = self.backend.input_shape[0]
        capacity = self.static_batch or max_batch
        if capacity < 1:
            raise UniadError(f"max_batch must be >= 1, got {max_batch}")
        h, w = self.metadata.graph_input_size
        self._buffer = np.zeros((capacity, h, w, 3), np.uint8)
        self._preparer = FramePreparer()
        self._lock = threading.Lock()

    @property
    def thresholds(self) -> Thresholds:
        """The thresholds in force (the line's file, else the model's defaults)."""
        return self.in_force.thresholds

    def use_thresholds(self, in_force: InForce) -> None:
        """Decide with `in_force` from now on (a new thresholds file); the model stays open."""
        self.in_force = in_force
        self.threshold = self._default_threshold()

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) that frames are resized to."""
        h, w = self.metadata.input_size
        return int(h), int(w)

    def _default_threshold(self) -> float | None:
        """The threshold `predict` judges with: this detector's class and override."""
        return threshold_for(self, self.class_name, self.threshold_override)

    @property
    def provenance(self) -> str:
        """Where the threshold in use came from, in the words `info` and the demo use."""
        return describe_provenance(self.thresholds, self.threshold_override)

    def __call__(self, frame: np.ndarray) -> Detection:
        return self.predict([frame])[0]

    def predict(self, frames: Iterable[np.ndarray] | np.ndarray) -> list[Detection]:
        """The plain Python API: `score` the frames and judge each against this detector's
        threshold (its class, override and the thresholds in force)."""
        return [found.judged(self.threshold) for found in self.score(frames)]

    def score(self, frames: Iterable[np.ndarray] | np.ndarray) -> list[Detection]:
        """Score a batch of frames (a sequence, or an NxHxWxC array), in chunks of the buffer;
        no threshold is applied (each Detection's is None): the caller who knows the frame's
        camera or request judges it (`Detection.judged`)."""
        images = [to_bgr8(f, self.bit_depth) for f in frames]
        step = len(self._buffer)
        results: list[Detection] = []
        for start in range(0, len(images), step):
            results += self._score_chunk(images[start : start + step])
        return results

    def _score_chunk(self, images: list[np.ndarray]) -> list[Detection]:
        n = len(images)
        h, w = self.input_size
        if self.metadata.frame_size is not None:
            check_frame_size(images, self.metadata)
            unfit = [None] * n  # exactly the size it was exported for
        else:
            unfit = [frame_problem(image.shape[:2], (h, w)) for image in images]
        with self._lock:
            t0 = time.perf_counter()
            self._preparer.into(self._buffer, images)
            batch = self._buffer if self.static_batch else self._buffer[:n]
            t1 = time.perf_counter()
            maps, scores = self.backend.infer(batch)
            t2 = time.perf_counter()
            if maps.shape[0] < n or scores.shape[0] < n or maps.shape[1:] != (h, w):
                raise UniadError(
                    f"backend {self.backend.name} returned maps {maps.shape} and scores "
                    f"{scores.shape} for a batch of {n} {h}x{w} images"
                )
            results = []
            for i in range(n):
                # No copy: `Backend.infer` returns arrays the caller owns (see its contract).
                score, model_map = float(scores[i]), np.asarray(maps[i], dtype=np.float32)
                results.append(
                    Detection(
                        score=score,
                        threshold=None,
                        model_map=model_map,
                        frame_size=images[i].shape[:2],
                        preprocess_ms=(t1 - t0) * 1e3 / n,
                        inference_ms=(t2 - t1) * 1e3 / n,
                        error=unfit[i] or untrusted(score, model_map),
                        roi=self.metadata.roi,
                    )
                )
            return results

    def close(self) -> None:
        self._preparer.close()
        self.backend.close()


def threshold_for(
    detector: Detector, class_name: str | None, override: float | None
) -> float | None:
    """The threshold a camera or request of `class_name` uses with `detector`'s thresholds in
    force (`verdict.resolve_threshold`)."""
    return resolve_threshold(detector.metadata, detector.thresholds, class_name, override)[0]
