"""Turn `--model` or `--preset` into what each backend loads: a checkpoint for PyTorch, the fused
ONNX (fp32, or the exporter's mixed-precision `--half` graph) for ONNX Runtime, and engines for
TensorRT. Everything is made lazily, once, and only for rows that will run.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UniadError
from ..metadata import ModelMetadata
from ..presets import Preset, get_preset
from ..runtime.backends import registry


class Unavailable(Exception):
    """This backend/precision cannot be measured from what was given; the row is skipped."""


def torch_missing() -> str | None:
    """Why PyTorch rows cannot run, or None when it is installed."""
    if importlib.util.find_spec("torch") is None:
        return 'PyTorch is not installed (`pip install "uniad-edge[train]"`)'
    return None


@dataclass
class ModelSource:
    """What `bench` measures, and the artifacts made from it so far."""

    kind: str  # "preset", "checkpoint", "onnx", "engine" or "url"
    description: str
    workdir: Path
    preset: Preset | None = None
    checkpoint: Path | None = None
    onnx: dict[str, Path] = field(default_factory=dict)
    engines: dict[str, Path] = field(default_factory=dict)
    metadata: ModelMetadata | None = None
    backbone_pretrained: bool | None = None
    url: str | None = None  # a served model (Triton): measured only by the backend of its scheme
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def gflops(self) -> float | None:
        """GFLOPs per image: counted by PyTorch when installed, else as the export recorded it."""
        if self.preset is not None and torch_missing() is None:
            from ..model.summary import gflops

            return gflops(self.preset)
        return None if self.metadata is None else self.metadata.gflops

    def checkpoint_for_torch(self) -> Path | None:
        """The checkpoint PyTorch rows load; None means random weights of `preset`."""
        if self.preset is None:
            raise Unavailable("the artifact does not say which architecture it is (no preset)")
        return self.checkpoint

    def onnx_for(self, precision: str) -> Path:
        """The fused ONNX of this precision, exported on first use."""
        if precision in self.onnx:
            return self.onnx[precision]
        if self.checkpoint is None:
            want = "the mixed-precision (--half) " if precision == "fp16" else "an fp32 "
            have = ",".join(self.onnx)
            hint = f"--precision {have} to measure it, or " if have else ""
            raise Unavailable(
                f"{self.description} is not {want}ONNX; pass {hint}{want}export with --model"
            )
        if precision in self.errors:
            raise UniadError(self.errors[precision])
        try:
            self.onnx[precision] = export(self.checkpoint, self.workdir, precision)
        except UniadError as exc:
            self.errors[precision] = f"export failed: {exc}"
            raise UniadError(self.errors[precision]) from None
        return self.onnx[precision]

    def engine_for(self, precision: str, max_batch: int, out_dir: Path) -> Path:
        """A TensorRT engine of this precision, built here from the fp32 ONNX on first use."""
        if precision in self.engines:
            return self.engines[precision]
        from ..trt import build_engine

        onnx = self.onnx_for("fp32")
        self.engines[precision] = build_engine(
            onnx, out_dir=out_dir, precision=precision, max_batch=max_batch
        )
        return self.engines[precision]


def resolve(model: Path | str | None, preset: str | Preset | None, workdir: Path) -> ModelSource:
    """Identify the model; a preset gets random weights saved once, so every backend measures
    the very same weights."""
    if preset is not None:
        return _from_preset(get_preset(preset) if isinstance(preset, str) else preset, workdir)
    assert model is not None
    if isinstance(model, str) and registry.url_scheme(model) is not None:
        return _from_url(model, workdir)
    model = Path(model)
    if not model.is_file():
        raise UniadError(f"model {model} not found")
    try:
        artifact = registry.get_spec(registry.resolve(model)).artifact
    except UniadError as exc:
        raise UniadError(f"cannot benchmark {model}: {exc}") from None
    readers = {"onnx": _from_onnx, "engine": _from_engine, "checkpoint": _from_checkpoint}
    if artifact not in readers:
        raise UniadError(f"cannot benchmark {model}: bench reads no {artifact} artifact")
    return readers[artifact](model, workdir)


def _from_url(url: str, workdir: Path) -> ModelSource:
    """A served model: its metadata comes from the server (which must be up now)."""
    with registry.load_backend(url) as backend:
        metadata = backend.metadata
    return ModelSource(
        kind="url",
        description=f"served model {url} ({metadata.preset})",
        workdir=workdir,
        preset=_preset_of(metadata),
        metadata=metadata,
        backbone_pretrained=metadata.backbone_pretrained,
        url=url,
    )


def _need_torch(what: str) -> None:
    reason = torch_missing()
    if reason:
        raise UniadError(f"{what} needs PyTorch to build the model: {reason}")


def _from_preset(preset: Preset, workdir: Path) -> ModelSource:
    _need_torch(f"--preset {preset.name}")
    import torch

    from ..model import build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model(preset, pretrained=False)
    checkpoint = save_checkpoint(workdir / f"{preset.name}.pth", model)
    return ModelSource(
        kind="preset",
        description=f"preset {preset.name} (random weights: speed only)",
        workdir=workdir,
        preset=preset,
        checkpoint=checkpoint,
        backbone_pretrained=False,
    )


def _from_checkpoint(path: Path, workdir: Path) -> ModelSource:
    _need_torch(f"checkpoint {path}")
    from ..model import load_checkpoint

    ckpt = load_checkpoint(path)
    return ModelSource(
        kind="checkpoint",
        description=f"checkpoint {path.name} ({ckpt.preset.name})",
        workdir=workdir,
        preset=ckpt.preset,
        checkpoint=path,
        backbone_pretrained=ckpt.model.backbone.pretrained,
    )


def _from_onnx(path: Path, workdir: Path) -> ModelSource:
    from ..runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    with OnnxRuntimeBackend(path, providers=["cpu"]) as backend:
        meta = backend.metadata
    return ModelSource(
        kind="onnx",
        description=f"ONNX {path.name} ({meta.preset}, {meta.precision})",
        workdir=workdir,
        preset=_preset_of(meta),
        onnx={meta.precision: path},
        metadata=meta,
        backbone_pretrained=meta.backbone_pretrained,
    )


def _from_engine(path: Path, workdir: Path) -> ModelSource:
    from ..trt.sidecar import EngineSidecar, sidecar_path

    sidecar = EngineSidecar.read(sidecar_path(path))
    meta = ModelMetadata.from_dict(sidecar.metadata)
    return ModelSource(
        kind="engine",
        description=f"engine {path.name} ({meta.preset}, {sidecar.precision})",
        workdir=workdir,
        preset=_preset_of(meta),
        engines={sidecar.precision: path},
        metadata=meta,
        backbone_pretrained=meta.backbone_pretrained,
    )


def _preset_of(meta: ModelMetadata) -> Preset | None:
    """The architecture an export records, so PyTorch can run the same shapes (random weights)."""
    if meta.preset_config:
        try:
            return Preset.from_dict(meta.preset_config)
        except (TypeError, ValueError):
            return None
    try:
        return get_preset(meta.preset)
    except ValueError:
        return None


def export(checkpoint: Path, workdir: Path, precision: str) -> Path:
    """The fused ONNX through the project's exporter (fp16: its mixed-precision `--half` graph).

    Parity checks are left to `uniad-edge export`: a benchmark needs the graph, not its accuracy.
    """
    from ..export import export_onnx

    name = f"{checkpoint.stem}-{precision}"
    result = export_onnx(checkpoint, workdir, name, half=precision == "fp16", verify=False)
    return result.onnx_path
