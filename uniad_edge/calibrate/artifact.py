"""Read and rewrite the thresholds stored in a deployed artifact, in place and atomically.

Where they live: an exported `.onnx` carries them in its `metadata_props` and in its JSON
sidecar; an engine only in its sidecar; a uniad-edge checkpoint in its `meta`. Each file is
written to a temporary file beside it and moved into place, so a crash leaves the old file.
onnx and torch are imported only for their own artifact kinds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UniadError
from ..fileio import atomic_path, write_json_atomic
from ..metadata import METADATA_KEY, Thresholds

ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan")
CHECKPOINT_SUFFIXES = (".pth", ".pt")


def _parse(data: Any, origin: Path) -> Thresholds:
    try:
        return Thresholds.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise UniadError(f"{origin}: {exc}") from None


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UniadError(f"cannot read metadata sidecar {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UniadError(f"{path} is not a uniad-edge metadata sidecar (not a JSON object)")
    return data


def _load_onnx(path: Path) -> Any:
    try:
        import onnx
    except ImportError:
        raise UniadError(
            f"rewriting {path} needs the onnx package: pip install onnx (or uniad-edge[train])"
        ) from None
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001  (protobuf raises several types for a bad file)
        reason = type(exc).__name__
        raise UniadError(f"{path}: not a loadable ONNX model ({reason}); re-export it") from None


def _onnx_prop(model: Any) -> Any | None:
    return next((p for p in model.metadata_props if p.key == METADATA_KEY), None)


def _checkpoint_payload(path: Path) -> dict[str, Any]:
    from ..model.checkpoint import CHECKPOINT_FORMAT, read_checkpoint_file

    payload = read_checkpoint_file(path)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise UniadError(
            f"{path} is not a uniad-edge checkpoint (an official UniAD one has no place for "
            "thresholds); export it with `uniad-edge export` and calibrate the .onnx"
        )
    return payload


def kind_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return "onnx"
    if suffix in ENGINE_SUFFIXES:
        return "engine"
    if suffix in CHECKPOINT_SUFFIXES:
        return "checkpoint"
    raise UniadError(
        f"cannot store thresholds in {path}: use an exported .onnx, an .engine/.plan or a "
        "uniad-edge .pth checkpoint"
    )


def read_thresholds(path: str | Path) -> Thresholds:
    """The thresholds the runtime would load from `path` (embedded ONNX metadata first)."""
    path = Path(path)
    if not path.is_file():
        raise UniadError(f"{path}: no such file; export or train the model first")
    kind = kind_of(path)
    if kind == "checkpoint":
        return _parse((_checkpoint_payload(path).get("meta") or {}).get("thresholds"), path)
    if kind == "onnx":
        prop = _onnx_prop(_load_onnx(path))
        if prop is not None:
            return _parse(json.loads(prop.value).get("thresholds"), path)
    sidecar = _sidecar(path)
    if not sidecar.is_file():
        raise UniadError(f"{path} has no uniad-edge metadata and no sidecar {sidecar.name}")
    return _parse(_read_json(sidecar).get("thresholds"), sidecar)


def write_thresholds(path: str | Path, thresholds: Thresholds) -> list[Path]:
    """Store `thresholds` in every place `path` keeps them; returns the files rewritten."""
    path = Path(path)
    kind = kind_of(path)
    written: list[Path] = []
    if kind == "checkpoint":
        import torch

        payload = _checkpoint_payload(path)
        payload["meta"] = {**(payload.get("meta") or {}), "thresholds": thresholds.to_dict()}
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return [path]
    if kind == "onnx":
        model = _load_onnx(path)
        prop = _onnx_prop(model)
        if prop is not None:
            data = json.loads(prop.value)
            data["thresholds"] = thresholds.to_dict()
            prop.value = json.dumps(data, sort_keys=True)
            with atomic_path(path) as tmp:
                tmp.write_bytes(model.SerializeToString())
            written.append(path)
    sidecar = _sidecar(path)
    if sidecar.is_file():
        data = _read_json(sidecar)
        data["thresholds"] = thresholds.to_dict()
        write_json_atomic(sidecar, data)
        written.append(sidecar)
    if not written:
        raise UniadError(f"{path} has no uniad-edge metadata and no sidecar {sidecar.name}")
    return written
