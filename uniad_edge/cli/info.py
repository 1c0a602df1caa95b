"""`uniad-edge info`: what a preset, checkpoint or exported model is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import UniadError
from ..presets import DEFAULT_PRESET, PRESETS, get_preset
from .app import app

ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan")
PROVENANCE = "threshold_provenance"


def _model_info(preset_name: str | None, artifact: Path | None) -> dict[str, Any]:
    from ..metadata import describe_provenance
    from ..model import build_model, load_checkpoint
    from ..model.deployment import checkpoint_thresholds
    from ..model.summary import describe

    if artifact is None:
        model = build_model(get_preset(preset_name or DEFAULT_PRESET), pretrained=False)
        return {**describe(model), "source": "preset (random-init weights)"}
    ckpt = load_checkpoint(artifact, get_preset(preset_name) if preset_name else None)
    return {
        **describe(ckpt.model),
        "backbone_provenance": ckpt.backbone_provenance,
        "source": f"{ckpt.kind} checkpoint",
        "path": str(artifact),
        "sha256": ckpt.sha256,
        "class_names": ckpt.class_names,
        "thresholds": ckpt.thresholds,
        PROVENANCE: describe_provenance(checkpoint_thresholds(ckpt)),
        "epoch": ckpt.meta.get("epoch"),
    }


def _onnx_info(path: Path) -> dict[str, Any]:
    """Read the metadata with ONNX Runtime only, so this works on a lean runtime install."""
    import onnxruntime as ort

    from ..metadata import describe_provenance
    from ..runtime.backends.sidecar import model_metadata

    if not path.is_file():
        raise UniadError(f"{path}: no such file; run `uniad-edge export` first")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001  (ORT raises several unrelated types for bad files)
        reason = type(exc).__name__
        raise UniadError(f"{path}: not a loadable ONNX model ({reason}); re-export it") from None
    metadata, source = model_metadata(path, session.get_modelmeta().custom_metadata_map)
    meta = metadata.to_dict()
    meta["metadata_source"] = source
    meta[PROVENANCE] = describe_provenance(metadata.thresholds)
    meta["inputs"] = {i.name: [i.type, i.shape] for i in session.get_inputs()}
    meta["outputs"] = {o.name: [o.type, o.shape] for o in session.get_outputs()}
    meta["path"] = str(path)
    return meta


def _cell(key: str, value: Any) -> str:
    """One value as rich markup: user strings escaped, warnings (random-init backbone,
    provisional thresholds) highlighted."""
    if key == "backbone_pretrained":
        return "yes" if value else "[yellow]no (random-init backbone: scores are not meaningful)[/]"
    if key == "feature_map":
        text = "x".join(str(v) for v in value)
    elif key == "input_size":
        text = f"{value[0]}x{value[1]}"
    elif key == "params" and isinstance(value, dict):
        text = ", ".join(f"{k} {v / 1e6:.2f} M" for k, v in value.items())
    elif isinstance(value, dict | list):
        text = json.dumps(value)
    else:
        text = str(value)
    if key == PROVENANCE and "PROVISIONAL" in text:
        return f"[yellow]{escape(text)}[/]"
    return escape(text)


def _engine_info(path: Path) -> dict[str, Any]:
    """An engine describes itself through its sidecar (TensorRT is not needed to read it)."""
    from ..metadata import describe_provenance
    from ..runtime.backends.sidecar import read_sidecar

    if not path.is_file():
        raise UniadError(f"{path}: no such file; build it with `uniad-edge export`")
    metadata = read_sidecar(path)
    if metadata is None:
        raise UniadError(f"{path}: no sidecar {path.with_suffix('.json').name} beside it")
    return {
        **metadata.to_dict(),
        PROVENANCE: describe_provenance(metadata.thresholds),
        "path": str(path),
    }


def _print(info: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold cyan")
    table.add_column()
    for key, value in info.items():
        table.add_row(key, _cell(key, value))
    Console(highlight=False).print(table)


@app.command()
def info(
    artifact: Annotated[
        Path | None,
        typer.Argument(
            help="Checkpoint (.pth, .pth.tar), exported .onnx, or .engine (its sidecar)."
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(help=f"Preset to describe ({', '.join(PRESETS)}); default {DEFAULT_PRESET}."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Input size, taps, feature map, tokens, parameters, GFLOPs, classes and thresholds."""
    if artifact is not None and artifact.suffix in ONNX_SUFFIXES:
        data = _onnx_info(artifact)
    elif artifact is not None and artifact.suffix in ENGINE_SUFFIXES:
        data = _engine_info(artifact)
    else:
        try:
            data = _model_info(preset, artifact)
        except ValueError as exc:
            raise UniadError(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        _print(data)
