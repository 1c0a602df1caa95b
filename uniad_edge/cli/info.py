"""`uniad-edge info`: what a preset, checkpoint or exported model is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..artifacts import ENGINE, ONNX, Artifact, is_kind, onnx_interface, open_artifact
from ..errors import UniadError
from ..presets import DEFAULT_PRESET, PRESETS, get_preset
from .app import app

PROVENANCE = "threshold_provenance"
WARNINGS = "warnings"


def _model_info(preset_name: str | None, artifact: Path | None) -> dict[str, Any]:
    from ..line_thresholds import thresholds_path
    from ..metadata import describe_provenance
    from ..model import build_model, load_checkpoint
    from ..model.deployment import line_thresholds_of
    from ..model.summary import describe

    if artifact is None:
        model = build_model(get_preset(preset_name or DEFAULT_PRESET), pretrained=False)
        return {**describe(model), "source": "preset (random-init weights)"}
    ckpt = load_checkpoint(artifact, get_preset(preset_name) if preset_name else None)
    thresholds = line_thresholds_of(ckpt)
    home = thresholds_path(artifact)
    return {
        **describe(ckpt.model),
        "backbone_provenance": ckpt.backbone_provenance,
        "source": f"{ckpt.kind} checkpoint",
        "path": str(artifact),
        "sha256": ckpt.sha256,
        "class_names": ckpt.class_names,
        "thresholds": thresholds.to_dict(),
        "thresholds_source": str(home) if home.is_file() else None,
        PROVENANCE: describe_provenance(thresholds),
        "epoch": ckpt.meta.get("epoch"),
    }


def _artifact_info(artifact: Artifact) -> dict[str, Any]:
    """An exported ONNX (ONNX Runtime reads its graph, so a lean runtime install works) or an
    engine (its sidecar; TensorRT is not needed): metadata, the thresholds in force (the
    line's file beside the model, else the model's defaults), provenance and warnings."""
    from ..artifacts import threshold_warnings
    from ..line_thresholds import in_force, thresholds_path
    from ..metadata import describe_provenance

    assert artifact.metadata is not None
    meta = artifact.metadata.to_dict()
    meta["metadata_source"] = artifact.source
    line = in_force(artifact.metadata, thresholds_path(artifact.path))
    meta["thresholds"] = line.thresholds.to_dict()
    meta["thresholds_source"] = line.source
    meta[PROVENANCE] = describe_provenance(line.thresholds)
    if artifact.kind.name == ONNX:
        interface = onnx_interface(artifact.path)  # read without the weights (a 2 GB model)
        meta.update(inputs=interface.inputs, outputs=interface.outputs)
    meta["path"] = str(artifact.path)
    warnings = [*artifact.warnings, *threshold_warnings(line.thresholds)]
    if warnings:
        meta[WARNINGS] = warnings
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
    elif key == "int8" and isinstance(value, dict):
        text = _int8_lines(value)
    elif isinstance(value, dict | list):
        text = json.dumps(value)
    else:
        text = str(value)
    if key == PROVENANCE and "PROVISIONAL" in text:
        return f"[yellow]{escape(text)}[/]"
    if key == WARNINGS:
        return "\n".join(f"[bold red]{escape(w)}[/]" for w in value)
    return escape(text)


def _int8_lines(record: dict[str, Any]) -> str:
    """An INT8 export's record as lines people read: what is quantized, the gate's numbers,
    the calibration, and the layer groups that move the score most (`--json` has it all)."""
    gate = record.get("gate") or {}
    auroc = gate.get("auroc_change")
    lines = [
        f"{record.get('quantized_nodes', '?')} nodes quantized in "
        f"{', '.join(record.get('quantized') or []) or '-'}; float: "
        f"{', '.join(record.get('float') or []) or 'none'}",
        f"gate: {gate.get('agreement', 0):.1%} of {gate.get('images', '?')} verdicts agree with "
        f"float32, p99 score change {gate.get('p99_score_change', float('nan')):.3f} of the "
        f"threshold" + ("" if auroc is None else f", AUROC change {auroc:+.4f}"),
    ]
    calibration = record.get("calibration") or {}
    if calibration:
        lines.append(
            f"calibrated on {calibration.get('images', '?')} images of {calibration.get('data')}"
        )
    ranking = record.get("ranking") or {}
    if ranking:
        worst = sorted(ranking.items(), key=lambda item: item[1], reverse=True)[:3]
        lines.append("moves the score most alone: " + "; ".join(f"{g} {v:.3f}" for g, v in worst))
    return "\n".join(lines)


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
    if artifact is not None and is_kind(artifact, ONNX, ENGINE):
        data = _artifact_info(open_artifact(artifact))
    else:
        try:
            data = _model_info(preset, artifact)
        except ValueError as exc:
            raise UniadError(str(exc)) from None
    for warning in data.get(WARNINGS, ()):
        Console(stderr=True, highlight=False).print(f"[bold red]WARNING: {escape(warning)}[/]")
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    else:
        _print(data)
