"""What an engine file was built from and for, kept in JSON beside it.

The JSON is the model's metadata dict (so it reads like any other `.json` sidecar) plus an
`engine` section with the build: ONNX hash, TensorRT version, GPU, precision, profile, workspace.

TensorRT engines only run on the TensorRT version and GPU model that built them, and a
mismatch is found only at deserialisation, with a cryptic error. The sidecar lets the runtime say
why before loading, and lets the builder skip a rebuild when nothing that matters has changed.
Free of torch and tensorrt: the runtime reads it on any machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..artifacts import ENGINE, KINDS, read_json_object, sidecar_path
from ..errors import UniadError
from ..fileio import write_json_atomic
from ..metadata import PRECISIONS

SIDECAR_VERSION = 1
ENGINE_SUFFIX = KINDS[ENGINE].suffixes[0]  # what this builder names its engines
ENGINE_KEY = "engine"


@dataclass(frozen=True)
class GpuInfo:
    """The GPU an engine is tied to: TensorRT picks kernels per model and compute capability."""

    name: str
    compute_capability: tuple[int, int]

    @property
    def sm(self) -> str:
        major, minor = self.compute_capability
        return f"sm{major}{minor}"

    @property
    def slug(self) -> str:
        """File-name-safe id, e.g. 'orin-sm87' or 'geforce-rtx-4090-sm89'."""
        name = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")
        name = re.sub(r"^nvidia-?", "", name) or "gpu"
        return f"{name}-{self.sm}"

    def describe(self) -> str:
        major, minor = self.compute_capability
        return f"{self.name} (compute {major}.{minor})"


@dataclass(frozen=True)
class Profile:
    """Batch range of the engine's optimization profile (static batch: min = opt = max)."""

    min_batch: int
    opt_batch: int
    max_batch: int

    def __post_init__(self) -> None:
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise UniadError(
                f"batch profile min={self.min_batch} opt={self.opt_batch} max={self.max_batch} "
                "is invalid; it needs 1 <= min <= opt <= max"
            )

    @property
    def is_static(self) -> bool:
        return self.min_batch == self.max_batch

    def shapes(
        self, height: int, width: int, channels: int = 3
    ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) NHWC shapes for `profile.set_shape` and trtexec."""
        return tuple(  # type: ignore[return-value]
            (b, height, width, channels) for b in (self.min_batch, self.opt_batch, self.max_batch)
        )

    def to_dict(self) -> dict[str, int]:
        return {"min": self.min_batch, "opt": self.opt_batch, "max": self.max_batch}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        return cls(int(data["min"]), int(data["opt"]), int(data["max"]))


def resolve_profile(
    onnx_batch: int | None, min_batch: int, opt_batch: int, max_batch: int
) -> Profile:
    """The profile to build: the requested range for a dynamic-batch ONNX, its fixed batch else."""
    if onnx_batch is not None and onnx_batch > 0:
        return Profile(onnx_batch, onnx_batch, onnx_batch)
    return Profile(min_batch, opt_batch, max_batch)


def normalise_trt_version(version: str) -> str:
    """'8.6.1.post1' -> '8.6.1': engines are tied to major.minor.patch, not packaging suffixes."""
    parts = re.findall(r"\d+", version.split("+")[0].split(".post")[0])
    return ".".join(parts[:3]) if parts else version


def cache_key(
    onnx_sha256: str,
    trt_version: str,
    gpu: GpuInfo,
    precision: str,
    strongly_typed: bool,
    profile: Profile,
    workspace_bytes: int,
) -> str:
    """Hash of everything that changes the engine; equal keys mean the engine can be reused."""
    fields = {
        "onnx_sha256": onnx_sha256,
        "tensorrt": normalise_trt_version(trt_version),
        "gpu": gpu.name,
        "compute_capability": list(gpu.compute_capability),
        "precision": precision,
        "strongly_typed": bool(strongly_typed),
        "profile": profile.to_dict(),
        "workspace_bytes": int(workspace_bytes),
        "sidecar_version": SIDECAR_VERSION,
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def engine_path(out_dir: str | os.PathLike[str], name: str, gpu: GpuInfo, precision: str) -> Path:
    """`engines/<name>.<gpu-slug>.<precision>.engine`: one file per model, device and precision."""
    return Path(out_dir) / f"{name}.{gpu.slug}.{precision}{ENGINE_SUFFIX}"


def timing_cache_path(out_dir: str | os.PathLike[str], gpu: GpuInfo, trt_version: str) -> Path:
    """Per device and TensorRT version: a timing cache from another one is useless or rejected."""
    return Path(out_dir) / f"timing-{gpu.slug}-trt{normalise_trt_version(trt_version)}.cache"


@dataclass
class EngineSidecar:
    """Everything needed to trust, describe and rebuild one engine file."""

    name: str
    onnx_path: str
    onnx_sha256: str
    engine_sha256: str
    tensorrt_version: str
    gpu: GpuInfo
    precision: str
    strongly_typed: bool
    profile: Profile
    input_name: str
    input_size: tuple[int, int]
    workspace_bytes: int
    cache_key: str
    metadata: dict[str, Any] = field(default_factory=dict)
    fp32_layers: int = 0
    # FP32 pins (nodes) an FP16-flag build was asked for and how many matched a layer.
    fp32_pins_requested: int = 0
    fp32_pins_matched: int = 0
    built_at: str = ""
    build_seconds: float = 0.0
    sidecar_version: int = SIDECAR_VERSION

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise UniadError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")

    def to_dict(self) -> dict[str, Any]:
        """Model metadata at the top level, like every `.json` sidecar; the build under 'engine'."""
        engine = {
            "sidecar_version": self.sidecar_version,
            "name": self.name,
            "onnx_path": self.onnx_path,
            "onnx_sha256": self.onnx_sha256,
            "engine_sha256": self.engine_sha256,
            "tensorrt_version": self.tensorrt_version,
            "gpu_name": self.gpu.name,
            "compute_capability": list(self.gpu.compute_capability),
            "precision": self.precision,
            "strongly_typed": self.strongly_typed,
            "profile": self.profile.to_dict(),
            "input_name": self.input_name,
            "input_size": list(self.input_size),
            "workspace_bytes": self.workspace_bytes,
            "cache_key": self.cache_key,
            "fp32_layers": self.fp32_layers,
            "fp32_pins_requested": self.fp32_pins_requested,
            "fp32_pins_matched": self.fp32_pins_matched,
            "built_at": self.built_at,
            "build_seconds": self.build_seconds,
        }
        return {**self.metadata, ENGINE_KEY: engine}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EngineSidecar:
        engine = data.get(ENGINE_KEY)
        if not isinstance(engine, dict):
            raise ValueError(f"no '{ENGINE_KEY}' section; this is not an engine sidecar")
        version = int(engine.get("sidecar_version", 0))
        if version != SIDECAR_VERSION:
            raise ValueError(f"engine sidecar format {version} is not {SIDECAR_VERSION}")
        major, minor = (int(v) for v in engine["compute_capability"])
        height, width = (int(v) for v in engine["input_size"])
        return cls(
            name=str(engine["name"]),
            onnx_path=str(engine.get("onnx_path", "")),
            onnx_sha256=str(engine["onnx_sha256"]),
            engine_sha256=str(engine.get("engine_sha256", "")),
            tensorrt_version=str(engine["tensorrt_version"]),
            gpu=GpuInfo(str(engine["gpu_name"]), (major, minor)),
            precision=str(engine["precision"]),
            strongly_typed=bool(engine.get("strongly_typed", False)),
            profile=Profile.from_dict(engine["profile"]),
            input_name=str(engine.get("input_name", "image")),
            input_size=(height, width),
            workspace_bytes=int(engine.get("workspace_bytes", 0)),
            cache_key=str(engine.get("cache_key", "")),
            metadata={k: v for k, v in data.items() if k != ENGINE_KEY},
            fp32_layers=int(engine.get("fp32_layers", 0)),
            fp32_pins_requested=int(engine.get("fp32_pins_requested", 0)),
            fp32_pins_matched=int(engine.get("fp32_pins_matched", 0)),
            built_at=str(engine.get("built_at", "")),
            build_seconds=float(engine.get("build_seconds", 0.0)),
        )

    def write(self, path: str | os.PathLike[str]) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> EngineSidecar:
        """Load a sidecar; a missing or damaged one is a one-line `UniadError` naming the file."""
        path = Path(path)
        if not path.is_file():
            raise UniadError(
                f"{path} not found: an engine needs its sidecar; rebuild it with "
                "`uniad-edge export --format engine`"
            )
        try:
            return cls.from_dict(read_json_object(path))
        except (UniadError, ValueError, KeyError, TypeError) as exc:
            raise UniadError(
                f"{path} is not a valid engine sidecar ({exc}); rebuild the engine with "
                "`uniad-edge export --format engine`"
            ) from None


def check_compatible(sidecar: EngineSidecar, trt_version: str, gpu: GpuInfo) -> str | None:
    """None when the engine can be deserialised here, else a reason naming both sides."""
    problems = []
    built = normalise_trt_version(sidecar.tensorrt_version)
    here = normalise_trt_version(trt_version)
    if built != here:
        problems.append(f"TensorRT {built} (this machine has TensorRT {here})")
    if sidecar.gpu.name != gpu.name or sidecar.gpu.compute_capability != gpu.compute_capability:
        problems.append(f"GPU {sidecar.gpu.describe()} (this machine has {gpu.describe()})")
    if not problems:
        return None
    return f"engine '{sidecar.name}' was built for " + " and for ".join(problems)


def find_engines(
    out_dir: str | os.PathLike[str], trt_version: str, gpu: GpuInfo, name: str | None = None
) -> list[Path]:
    """Engines in `out_dir` usable here (optionally of one model), newest first."""
    found = []
    for engine in Path(out_dir).glob(f"*{ENGINE_SUFFIX}"):
        try:
            sidecar = EngineSidecar.read(sidecar_path(engine))
        except UniadError:
            continue
        if name not in (None, sidecar.name):
            continue
        if check_compatible(sidecar, trt_version, gpu) is None:
            found.append(engine)
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)
