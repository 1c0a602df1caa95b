"""What one `bench` run measures: the options of `uniad-edge bench` as one value."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..artifacts import kind_of, url_scheme
from ..backends import register_model_backends
from ..errors import UniadError
from ..metadata import PRECISIONS
from ..presets import Preset
from ..runtime.backends.registry import BACKENDS as REGISTRY

BASELINE = "torch"
DEFAULT_BACKENDS = (BASELINE, "onnxruntime", "tensorrt")
E2E_MAPS = ("all", "ng", "none")  # which frames' full-resolution maps the end-to-end column makes

register_model_backends()  # the baseline row, here and in every worker process


def bench_backends() -> tuple[str, ...]:
    """Every registered backend, in row order: PyTorch first, it is the speedup baseline."""
    return (BASELINE, *(name for name in REGISTRY if name != BASELINE))


@dataclass
class BenchConfig:
    """`model` (ONNX, engine, checkpoint or a served model's URL) or `preset` (random weights)
    says what to measure. `backends` None: the defaults, or only the URL's backend for a URL.

    `seconds`, when set, replaces `runs`: each row is timed for that long (at least 3 calls).
    `frame_wh` is the camera frame (width, height) of the end-to-end column; `e2e_maps` says
    whose full-resolution maps it computes: a station's default makes them for NG evidence only.
    """

    model: Path | str | None = None
    preset: str | Preset | None = None
    backends: tuple[str, ...] | None = None
    precisions: tuple[str, ...] = ("fp32",)
    batches: tuple[int, ...] = (1,)
    warmup: int = 3
    runs: int = 20
    seconds: float | None = None
    threads: int | None = None
    frame_wh: tuple[int, int] = (1280, 720)
    e2e: bool = True
    e2e_maps: str = "ng"
    roofline: bool = False
    providers: tuple[str, ...] | None = None
    workdir: Path | None = None
    engine_dir: Path | None = None

    def __post_init__(self) -> None:
        if (self.model is None) == (self.preset is None):
            raise UniadError("give exactly one of --model ARTIFACT or --preset NAME")
        scheme = url_scheme(self.model) if isinstance(self.model, str) else None
        if isinstance(self.model, str) and scheme is None:
            self.model = Path(self.model)  # a file; a URL stays a string (Path mangles "//")
        if self.backends is None:
            kind = kind_of(self.model) if scheme else None
            served = [s.name for s in REGISTRY.values() if kind and s.artifact == kind.name]
            self.backends = tuple(served) if scheme else DEFAULT_BACKENDS
        known = bench_backends()
        unknown = [b for b in self.backends if b not in known]
        if unknown or not self.backends:
            raise UniadError(f"unknown backend(s) {unknown}; choose from {', '.join(known)}")
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad or not self.precisions:
            raise UniadError(f"unknown precision(s) {bad}; choose from {', '.join(PRECISIONS)}")
        if not self.batches or min(self.batches) < 1:
            raise UniadError(f"batch sizes must be >= 1, got {list(self.batches)}")
        if self.warmup < 0 or self.runs < 1:
            raise UniadError("warmup must be >= 0 and runs >= 1")
        if self.seconds is not None and not self.seconds > 0:
            raise UniadError(f"seconds must be > 0, got {self.seconds}")
        if self.threads is not None and self.threads < 1:
            raise UniadError(f"threads must be >= 1, got {self.threads}")
        if self.e2e_maps not in E2E_MAPS:
            raise UniadError(f"--e2e-maps is one of {', '.join(E2E_MAPS)}, got {self.e2e_maps!r}")
        if min(self.frame_wh) < 1:
            raise UniadError(f"frame size must be positive, got {self.frame_wh}")

    def to_dict(self) -> dict[str, Any]:
        preset = self.preset.name if isinstance(self.preset, Preset) else self.preset
        return {
            "model": None if self.model is None else str(self.model),
            "preset": preset,
            "backends": list(self.backends),
            "precisions": list(self.precisions),
            "batches": list(self.batches),
            "warmup": self.warmup,
            "runs": self.runs,
            "seconds": self.seconds,
            "threads": self.threads,
            "frame_wh": list(self.frame_wh),
            "e2e": self.e2e,
            "e2e_maps": self.e2e_maps,
            "roofline": self.roofline,
        }


def split_list(text: str) -> list[str]:
    """ "onnxruntime, torch" -> ["onnxruntime", "torch"]: the CLI's comma-separated options."""
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_batches(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in split_list(text))
    except ValueError:
        raise UniadError(f"--batch takes comma-separated integers, got {text!r}") from None


def parse_frame(text: str) -> tuple[int, int]:
    """ "1280x720" -> (1280, 720): width first, as cameras are specified."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UniadError(f"--frame-size takes WIDTHxHEIGHT, e.g. 1280x720, got {text!r}") from None
    return width, height
