"""Read the JSON sidecar that sits beside every exported `.onnx` and built `.engine`.

The sidecar is the fallback when an artifact carries no embedded metadata, and the only copy an
engine has; reading it needs neither onnx nor TensorRT.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UniadError
from ..metadata import ModelMetadata


def sidecar_path(model_path: str | Path) -> Path:
    """`export/model.onnx` -> `export/model.json`."""
    return Path(model_path).with_suffix(".json")


def parse_metadata(text: str, origin: str) -> ModelMetadata:
    """Metadata from its JSON text, with a one-line error naming where it came from."""
    try:
        return ModelMetadata.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise UniadError(f"invalid uniad-edge metadata in {origin}: {exc}") from None


def read_sidecar(model_path: str | Path) -> ModelMetadata | None:
    """The sidecar's metadata, or None when there is no sidecar file."""
    path = sidecar_path(model_path)
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
        json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UniadError(f"cannot read metadata sidecar {path}: {exc}") from None
    return parse_metadata(text, str(path))
