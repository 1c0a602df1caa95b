"""The contract between export and runtime: what a deployed model says about itself.

Stored as one JSON string under the ONNX `metadata_props` key `uniad_edge` and, identical, in the
JSON sidecar beside every `.onnx` and `.engine` file. Torch-free: the runtime reads it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

METADATA_KEY = "uniad_edge"
FORMAT_VERSION = 1

INPUT_NAME = "image"
OUTPUT_MAP = "anomaly_map"
OUTPUT_SCORE = "score"
PRECISIONS = ("fp32", "fp16", "int8")
"""Every precision a model is exported, built or run in; backends list their subset (int8: the
explicit-quantization Q/DQ graph, `export --precision int8`)."""
DEFAULT_MAX_BATCH = 8
"""Largest batch of an exported dynamic graph's engine profile, and of one backend call."""
DEFAULT_WORKSPACE_GIB = 4.0
GIB = 1 << 30  # bytes in a GiB: workspace sizes are given in GiB, passed on in bytes
"""TensorRT builder workspace, for engines built by export, adopt, Triton and ORT's TRT EP."""
DEFAULT_ENGINE_DIR = Path("engines")
"""Where engines are built and looked for (export, `run`'s default model, ORT's TRT caches)."""


HOLDOUT = "holdout"
CALIBRATION = "calibration"
MANUAL = "manual"  # set by hand (serve's POST /v1/thresholds)


def check_threshold(value: float, what: str) -> float:
    """A usable threshold is finite and > 0: inf would call every frame OK, <= 0 every one NG,
    and NaN compares False with everything."""
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(
            f"{what} is {number!r}; a threshold must be finite and > 0 (re-run "
            "`uniad-edge calibrate` or pass a positive --threshold)"
        )
    return number


@dataclass
class Thresholds:
    """Decision thresholds on the raw image score; normalised score = score / threshold.

    `provenance` says where they came from ({"source": "holdout" | "calibration", "date",
    "data", "images", "policy", ...}); `history` keeps every earlier set (newest last) with the
    date it was replaced, so a station can roll back.
    """

    global_: float | None = None
    per_class: dict[str, float] = field(default_factory=dict)
    rule: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.global_ is not None:
            self.global_ = check_threshold(self.global_, "the global threshold")
        self.per_class = {
            str(k): check_threshold(v, f"the threshold of class {k!r}")
            for k, v in self.per_class.items()
        }

    def for_class(self, class_name: str | None) -> float | None:
        if class_name is not None and class_name in self.per_class:
            return self.per_class[class_name]
        return self.global_

    def resolve(self, class_name: str | None, override: float | None) -> tuple[float | None, str]:
        """The threshold a camera or request of `class_name` uses, and where it comes from:
        `override` if given ("given"), else this set's for the class ("model, class NAME"), else
        the global one ("model, global"); (None, "none") when there is none. The one rule every
        surface uses; an unusable value raises ValueError naming it."""
        if override is not None:
            return check_threshold(override, "the given threshold"), "given"
        if class_name is not None and class_name in self.per_class:
            return self.per_class[class_name], f"model, class {class_name}"
        if self.global_ is not None:
            return self.global_, "model, global"
        return None, "none"

    @property
    def empty(self) -> bool:
        return self.global_ is None and not self.per_class

    @property
    def source(self) -> str:
        """ "holdout", "calibration", "manual" or "unknown"; files written before provenance
        was recorded are recognised as hold-out thresholds by their rule."""
        recorded = self.provenance.get("source")
        if recorded:
            return str(recorded)
        return HOLDOUT if "held-out" in self.rule else "unknown"

    @property
    def provisional(self) -> bool:
        """Hold-out thresholds rest on the 2-4 good images per class kept back at training."""
        return not self.empty and self.source == HOLDOUT

    def current(self) -> dict[str, Any]:
        """This set without its history: what a history entry holds."""
        return {
            "global": self.global_,
            "per_class": dict(self.per_class),
            "rule": self.rule,
            "provenance": dict(self.provenance),
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.current(), "history": [dict(h) for h in self.history]}

    def superseded_by(self, new: Thresholds, when: str) -> Thresholds:
        """`new`, with this set appended to the history as replaced at `when`."""
        entry = {**self.current(), "replaced": when}
        return replace(new, history=[*self.history, entry])

    def rolled_back(self) -> Thresholds:
        """The newest history entry restored (its own earlier history kept)."""
        if not self.history:
            raise ValueError("no earlier thresholds in the history to roll back to")
        *older, last = self.history
        return replace(Thresholds.from_dict(last), history=older)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Thresholds:
        data = data or {}
        return cls(
            global_=None if data.get("global") is None else float(data["global"]),
            per_class={str(k): float(v) for k, v in (data.get("per_class") or {}).items()},
            rule=str(data.get("rule", "")),
            provenance=dict(data.get("provenance") or {}),
            history=[dict(h) for h in data.get("history") or []],
        )


def _count(value: Any) -> str:
    return str(value) if value is not None else "?"


def describe_provenance(thresholds: Thresholds, override: float | None = None) -> str:
    """One line saying where the thresholds in use came from; `info`, `run` and the demo print
    this, so every surface words it the same way."""
    if override is not None:
        return f"threshold {override:.6g} given explicitly (--threshold), not the model's"
    if thresholds.empty:
        return "no thresholds: verdicts are off; run `uniad-edge calibrate` to set them"
    info = thresholds.provenance
    if thresholds.source == CALIBRATION:
        policy = info.get("policy", "?")
        return (
            f"calibrated {info.get('date', '?')} on {_count(info.get('good'))} good and "
            f"{_count(info.get('defective'))} defective images of {info.get('data', '?')} "
            f"({policy})"
        )
    if thresholds.source == MANUAL:
        note = f": {info['note']}" if info.get("note") else ""
        return f"set by hand {info.get('date', '?')}{note} (not calibrated on images)"
    if thresholds.source == HOLDOUT:
        held = info.get("images")
        images = f"{held} good images" if held is not None else "the good images"
        return (
            f"PROVISIONAL: from {images} held out at training; run `uniad-edge calibrate` "
            "on more good images before trusting the false-alarm rate"
        )
    return "thresholds of unknown origin; run `uniad-edge calibrate` to set them on your images"


@dataclass
class ModelMetadata:
    """Self-description of an exported model (fused graph: uint8 BGR NHWC in, map + score out)."""

    name: str
    preset: str
    input_size: tuple[int, int]
    score_reduction: str
    score_pool: int = 16
    output_stride: int = 16
    feature_map: tuple[int, int, int] = (0, 0, 0)
    class_names: list[str] = field(default_factory=list)
    thresholds: Thresholds = field(default_factory=Thresholds)
    backbone_pretrained: bool = False
    backbone_provenance: str = ""  # "" in models exported before it was recorded
    checkpoint_sha256: str = ""
    # Where that checkpoint was at export (absolute): `bench` runs its PyTorch rows on it, when
    # it is still there with that sha256, so every row computes the same function.
    checkpoint_path: str = ""
    precision: str = "fp32"
    batch: int | None = None  # None: dynamic batch
    opset: int = 17
    versions: dict[str, str] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    preset_config: dict[str, Any] = field(default_factory=dict)
    gflops: float | None = None  # per image, counted by PyTorch at export (None: older exports)
    # Nodes kept float32 in every float16 build by the export's range contract (their float32
    # range nears float16's limit); None: not measured (exported without verification).
    fp32_nodes: list[str] | None = None
    # Every node an FP16-flag TensorRT build keeps FP32 (the distance head, then `fp32_nodes`):
    # name -> {"op": type, "outputs": [tensor names]}. The builder matches layers by these
    # tensors and trtexec lines name them, with or without the `onnx` package.
    fp32_pins: dict[str, dict[str, Any]] | None = None
    # `export --frame-size/--roi`: the graph takes whole camera frames (height, width), crops
    # `roi` (x, y, width, height) and resizes to `input_size` itself; None: frames at input_size.
    frame_size: tuple[int, int] | None = None
    roi: tuple[int, int, int, int] | None = None
    # `--precision int8`: the quantizer, the layer groups quantized and left float, and the
    # gate's numbers against float32 on held-out images (export/int8.py); None otherwise.
    int8: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["thresholds"] = self.thresholds.to_dict()
        data["input_size"] = list(self.input_size)
        data["feature_map"] = list(self.feature_map)
        data["frame_size"] = None if self.frame_size is None else list(self.frame_size)
        data["roi"] = None if self.roi is None else list(self.roi)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        version = int(data.get("format_version", 0))
        if version != FORMAT_VERSION:
            raise ValueError(
                f"metadata format {version} is not supported (expected {FORMAT_VERSION}); "
                "re-export the model with this version of uniad-edge"
            )
        known = set(cls.__dataclass_fields__)
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["input_size"] = tuple(int(v) for v in data["input_size"])
        kwargs["feature_map"] = tuple(int(v) for v in data.get("feature_map", (0, 0, 0)))
        kwargs["thresholds"] = Thresholds.from_dict(data.get("thresholds"))
        for key in ("frame_size", "roi"):
            if data.get(key) is not None:
                kwargs[key] = tuple(int(v) for v in data[key])
        return cls(**kwargs)

    @property
    def graph_input_size(self) -> tuple[int, int]:
        """(height, width) of the frames the graph takes: the camera's with `--frame-size`."""
        return self.frame_size or self.input_size

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        return cls.from_dict(json.loads(text))
