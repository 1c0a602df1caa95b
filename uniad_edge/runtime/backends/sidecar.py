"""Read the JSON sidecar that sits beside every exported `.onnx` and built `.engine`.

The sidecar is the fallback when an artifact carries no embedded metadata, and the only copy an
engine has; reading it needs neither onnx nor TensorRT.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ...errors import UniadError
from ...metadata import METADATA_KEY, ModelMetadata

log = logging.getLogger(__name__)
_warned: set[Path] = set()


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


def model_metadata(model_path: str | Path, properties: dict[str, str]) -> tuple[ModelMetadata, str]:
    """The metadata a model runs with, and where it came from (the .onnx or its sidecar).

    The embedded copy wins: it was written with the graph. A sidecar that disagrees with it
    (edited after export) is reported once per model, naming both files and the fields.
    """
    path = Path(model_path)
    if METADATA_KEY not in properties:
        sidecar = read_sidecar(path)
        if sidecar is None:
            raise UniadError(
                f"{path} has no uniad-edge metadata (no '{METADATA_KEY}' property and no "
                f"{sidecar_path(path).name} beside it); export it with `uniad-edge export`"
            )
        return sidecar, str(sidecar_path(path))
    embedded = parse_metadata(properties[METADATA_KEY], str(path))
    if path.resolve() not in _warned:
        problem = _sidecar_disagreement(path, embedded)
        if problem:
            _warned.add(path.resolve())
            log.warning(
                "%s %s the metadata embedded in %s; using the embedded copy: re-export to "
                "change it, or pass --threshold to override thresholds",
                sidecar_path(path),
                problem,
                path,
            )
    return embedded, str(path)


def _sidecar_disagreement(path: Path, embedded: ModelMetadata) -> str | None:
    """How the sidecar beside `path` contradicts `embedded`, or None (absent or identical)."""
    try:
        sidecar = read_sidecar(path)
    except UniadError as exc:
        return f"is unreadable ({exc}) and cannot confirm"
    if sidecar is None:
        return None
    ours, theirs = embedded.to_dict(), sidecar.to_dict()
    differing = sorted(k for k in ours if ours[k] != theirs.get(k))
    return f"differs in {', '.join(differing)} from" if differing else None
