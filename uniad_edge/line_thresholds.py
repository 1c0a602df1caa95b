"""The line's thresholds: one mutable file beside an immutable model.

An exported model (ONNX, TensorRT engine, a Triton model) is never rewritten after export: the
thresholds inside its metadata are provisional defaults (hold-out, from training). What a line
decides with lives in `<model file>.thresholds.json` beside it (`model.onnx` ->
`model.onnx.thresholds.json`; a station that scores a Triton URL names its file with
`StationConfig.thresholds`). `calibrate`, its `--rollback` and a station update write only this
file, atomically, with the earlier sets in its history and the provenance of each; the file
also names the weights it was calibrated for, so thresholds left beside a re-exported model
are not applied to weights they were never measured on.

Copying a model to another line carries only its provisional defaults: a line adopts
thresholds by calibrating on its own images, or, on purpose, by copying another line's
`.thresholds.json` beside its model (README, "Thresholds on a line").

Files exported before this carry their calibrated thresholds inside the model; they keep
working: read once from the model with a one-line note, until the first `calibrate` writes
the line's file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UniadError
from .fileio import write_bytes_atomic
from .metadata import CALIBRATION, ModelMetadata, Thresholds

log = logging.getLogger(__name__)
SUFFIX = ".thresholds.json"
SCHEMA = 1


def now() -> str:
    """The UTC time, to the second, that dates a set of thresholds and the one it replaced."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def thresholds_path(model: str | os.PathLike[str]) -> Path:
    """`export/model.onnx` -> `export/model.onnx.thresholds.json`."""
    path = Path(model)
    return path.with_name(path.name + SUFFIX)


def weights_id(metadata: ModelMetadata) -> str:
    """Which weights a model carries: its name plus checkpoint hash prefix."""
    sha = metadata.checkpoint_sha256
    return f"{metadata.name}@{sha[:12]}" if sha else metadata.name


def digest(thresholds: Thresholds) -> str:
    """A short fingerprint of a set of thresholds (without its history): the part of a model
    id that changes when the decision rule does."""
    text = json.dumps(thresholds.current(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class InForce:
    """The thresholds a model decides with, and where they came from: the line's file
    (`path`, `from_file`), or the model's own export-time defaults."""

    thresholds: Thresholds
    path: (
        Path | None
    )  # where the line's file is (or would be); None: no home (a URL, a lent backend)
    from_file: bool

    @property
    def tag(self) -> str:
        """What the model id adds for the line's thresholds ("" for the model's defaults)."""
        return f"+t{digest(self.thresholds)}" if self.from_file else ""

    @property
    def source(self) -> str:
        return str(self.path) if self.from_file else "the model's metadata"


def read_file(path: str | os.PathLike[str]) -> tuple[Thresholds, str | None]:
    """A thresholds file's set and the weights it names, or a one-line error naming the file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UniadError(f"cannot read thresholds file {path}: {exc}; fix or delete it") from None
    if not isinstance(data, dict) or not isinstance(data.get("thresholds"), dict):
        raise UniadError(f"{path} is not a uniad-edge thresholds file (no 'thresholds' object)")
    if int(data.get("schema", SCHEMA)) > SCHEMA:
        raise UniadError(f"{path} was written by a newer uniad-edge; upgrade to read it")
    try:
        thresholds = Thresholds.from_dict(data["thresholds"])
    except (TypeError, ValueError) as exc:
        raise UniadError(f"{path}: {exc}") from None
    weights = data.get("weights")
    return thresholds, None if weights is None else str(weights)


def in_force(metadata: ModelMetadata, path: Path | None) -> InForce:
    """The thresholds a model with `metadata` decides with: the line's file at `path` when
    there is one for these weights, else the model's own (with a note when they are an older
    calibrate's, embedded in the model)."""
    if path is not None and path.is_file():
        thresholds, weights = read_file(path)
        ours = weights_id(metadata)
        if weights is None or weights == ours:
            return InForce(thresholds, path, True)
        log.warning(
            "%s was calibrated for the weights %s, not %s; using the model's provisional "
            "thresholds: run `uniad-edge calibrate` for this model",
            path,
            weights,
            ours,
        )
    elif metadata.thresholds.source == CALIBRATION:
        where = f"; the next calibrate writes {path}" if path is not None else ""
        log.warning(
            "%s carries calibrated thresholds inside the model (an older calibrate); they are "
            "used%s",
            metadata.name,
            where,
        )
    return InForce(metadata.thresholds, path, False)


def write(
    path: str | os.PathLike[str],
    thresholds: Thresholds,
    weights: str | None,
    force: bool = False,
) -> Path:
    """Replace the line's thresholds file atomically (the model is never touched); a read-only
    file is refused unless `force` (and keeps its mode)."""
    target = Path(path)
    read_only = target.exists() and (
        not os.access(target, os.W_OK) or not target.stat().st_mode & 0o222  # root writes all
    )
    if read_only and not force:
        raise UniadError(f"{target} is read-only; make it writable or pass --force to replace it")
    body: dict[str, Any] = {"schema": SCHEMA, "weights": weights}
    body["thresholds"] = thresholds.to_dict()
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
    try:
        write_bytes_atomic(target, (json.dumps(body, indent=2, sort_keys=True) + "\n").encode())
        if mode is not None:  # a replaced file keeps its mode (a read-only one, with --force)
            target.chmod(mode)
    except OSError as exc:
        raise UniadError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target
