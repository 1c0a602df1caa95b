"""The contract between export and runtime: what a deployed model says about itself.

Stored as one JSON string under the ONNX `metadata_props` key `uniad_edge` and, identical, in the
JSON sidecar beside every `.onnx` and `.engine` file. Torch-free: the runtime reads it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

METADATA_KEY = "uniad_edge"
FORMAT_VERSION = 1

INPUT_NAME = "image"
OUTPUT_MAP = "anomaly_map"
OUTPUT_SCORE = "score"
PRECISIONS = ("fp32", "fp16")
"""Every precision a model is exported, built or run in; backends list their subset."""


@dataclass
class Thresholds:
    """Decision thresholds on the raw image score; normalised score = score / threshold."""

    global_: float | None = None
    per_class: dict[str, float] = field(default_factory=dict)
    rule: str = ""

    def for_class(self, class_name: str | None) -> float | None:
        if class_name is not None and class_name in self.per_class:
            return self.per_class[class_name]
        return self.global_

    def to_dict(self) -> dict[str, Any]:
        return {"global": self.global_, "per_class": dict(self.per_class), "rule": self.rule}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Thresholds:
        data = data or {}
        return cls(
            global_=None if data.get("global") is None else float(data["global"]),
            per_class={str(k): float(v) for k, v in (data.get("per_class") or {}).items()},
            rule=str(data.get("rule", "")),
        )


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
    checkpoint_sha256: str = ""
    precision: str = "fp32"
    batch: int | None = None  # None: dynamic batch
    opset: int = 17
    versions: dict[str, str] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    preset_config: dict[str, Any] = field(default_factory=dict)
    gflops: float | None = None  # per image, counted by PyTorch at export (None: older exports)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["thresholds"] = self.thresholds.to_dict()
        data["input_size"] = list(self.input_size)
        data["feature_map"] = list(self.feature_map)
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
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        return cls.from_dict(json.loads(text))
