"""Turn `--model` or `--preset` into what each backend loads: a checkpoint for PyTorch, and for
every other backend the artifact of its kind in the row's precision, made by the export format
that makes that kind (`export.formats.format_for`): the fused ONNX (fp32, or fp16, the
mixed-precision graph) for ONNX Runtime, an engine for TensorRT. Everything is made lazily,
once, and only for rows that will run.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..artifacts import (
    CHECKPOINT,
    ENGINE,
    KINDS,
    ONNX,
    URL,
    describe_kinds,
    kind_of,
    open_artifact,
    stem,
)
from ..errors import UniadError
from ..fileio import sha256_file
from ..metadata import ModelMetadata
from ..presets import Preset, get_preset
from ..runtime.backends import registry

if TYPE_CHECKING:
    from ..export.pipeline import ExportResult


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

    kind: str  # "preset", or the artifact kind given: "checkpoint", "onnx", "engine" or "url"
    description: str
    workdir: Path
    preset: Preset | None = None
    checkpoint: Path | None = None
    prepared: dict[tuple[str, str], Path] = field(default_factory=dict)  # (kind, precision)
    metadata: ModelMetadata | None = None
    backbone_pretrained: bool | None = None
    url: str | None = None  # a served model (Triton): measured only by the backend of its scheme
    errors: dict[tuple[str, str], str] = field(default_factory=dict)
    # An artifact's PyTorch rows: the checkpoint its provenance names, or why they run random
    # weights ("; ..." appended to the row's note).
    torch_checkpoint: Path | None = None
    torch_weights_note: str = ""

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
        return self.checkpoint or self.torch_checkpoint

    def artifact_for(self, kind: str, precision: str, max_batch: int, engine_dir: Path) -> Path:
        """The artifact of `kind` in `precision`, made on first use by the export format that
        makes that kind, from the fp32 ONNX graph (or the fp16 one for an fp16 ONNX)."""
        if (kind, precision) in self.prepared:
            return self.prepared[kind, precision]
        from ..export.formats import format_for, run_steps
        from ..export.options import ExportOptions
        from ..trt import TensorRTUnavailableError

        fmt = format_for(kind)
        if fmt is None:
            raise Unavailable(f"no export format makes a {kind} artifact to measure")
        reason = fmt.unavailable()
        if reason:
            raise Unavailable(reason)
        settings = ExportOptions(
            out=self.workdir, engine_dir=engine_dir, max_batch=max_batch, verify=False,
            **{fmt.precision_option: precision},
        )  # fmt: skip
        if (kind, precision) in self.errors:
            raise UniadError(self.errors[kind, precision])
        source = self._onnx(settings.precision)
        try:
            made = run_steps(fmt, source, settings)
        except TensorRTUnavailableError as exc:
            raise Unavailable(str(exc)) from None
        except UniadError as exc:
            self.errors[kind, precision] = f"{fmt.name} export failed: {exc}"
            raise UniadError(self.errors[kind, precision]) from None
        path = made[-1].path if made else source.onnx_path
        assert path is not None  # a step that makes nothing raises instead
        self.prepared[kind, precision] = path
        return path

    def _onnx(self, precision: str) -> ExportResult:
        """The exported ONNX of this precision, as the format steps take it."""
        from ..export.pipeline import ExportResult, export_graph

        given = self.prepared.get((ONNX, precision))
        if given is not None and self.metadata is not None:
            return ExportResult(given, given.with_suffix(".json"), self.metadata, 0)
        if self.checkpoint is None:
            want = "the mixed-precision (fp16) " if precision == "fp16" else "an fp32 "
            have = ",".join(p for k, p in self.prepared if k == ONNX)
            hint = f"--precision {have} to measure it, or " if have else ""
            raise Unavailable(
                f"{self.description} is not {want}ONNX; pass {hint}{want}export with --model"
            )
        if (ONNX, precision) in self.errors:
            raise UniadError(self.errors[ONNX, precision])
        from ..export.options import ExportOptions

        name = f"{stem(self.checkpoint)}-{precision}"
        options = ExportOptions(out=self.workdir, name=name, precision=precision, verify=False)
        try:
            result = export_graph(self.checkpoint, options)
        except UniadError as exc:
            self.errors[ONNX, precision] = f"export failed: {exc}"
            raise UniadError(self.errors[ONNX, precision]) from None
        self.prepared[ONNX, precision] = result.onnx_path
        self.metadata = self.metadata or result.metadata
        return result


def resolve(model: Path | str | None, preset: str | Preset | None, workdir: Path) -> ModelSource:
    """Identify the model; a preset gets random weights saved once, so every backend measures
    the very same weights."""
    if preset is not None:
        return _from_preset(get_preset(preset) if isinstance(preset, str) else preset, workdir)
    assert model is not None
    kind = kind_of(model)
    if kind is not None and kind.name == URL:
        return _from_url(str(model), workdir)
    model = Path(model)
    if not model.is_file():
        raise UniadError(f"model {model} not found")
    readers = {ONNX: _from_artifact, ENGINE: _from_artifact, CHECKPOINT: _from_checkpoint}
    if kind is None:
        raise UniadError(f"cannot benchmark {model}: use {describe_kinds(KINDS)}")
    return readers[kind.name](model, workdir)


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


def _from_artifact(path: Path, workdir: Path) -> ModelSource:
    """An exported ONNX or an engine: measured as it is (other precisions need a checkpoint)."""
    artifact = open_artifact(path)
    meta = artifact.metadata
    assert meta is not None
    precision = (artifact.build or {}).get("precision", meta.precision)
    checkpoint, note = _exported_from(meta)
    return ModelSource(
        kind=artifact.kind.name,
        description=f"{artifact.kind.description} {path.name} ({meta.preset}, {precision})",
        workdir=workdir,
        preset=_preset_of(meta),
        prepared={(artifact.kind.name, precision): path},
        metadata=meta,
        backbone_pretrained=meta.backbone_pretrained,
        torch_checkpoint=checkpoint,
        torch_weights_note=note,
    )


def _exported_from(meta: ModelMetadata) -> tuple[Path | None, str]:
    """The checkpoint an artifact was exported from, when it is still there with the same bytes,
    so that its PyTorch rows compute the same function; else None and why not."""
    if not meta.checkpoint_path:
        return None, " (the model does not record its checkpoint: re-export it)"
    path = Path(meta.checkpoint_path)
    if not path.is_file():
        return None, f" ({path}, its checkpoint, is not on this machine)"
    if meta.checkpoint_sha256 and sha256_file(path) != meta.checkpoint_sha256:
        return None, f" ({path} has changed since the export)"
    return path, ""


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
