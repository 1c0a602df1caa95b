"""What a model artifact is: one table of kinds (suffixes, URL schemes, where metadata lives),
`open_artifact` to read any of them, and the one place a model's thresholds are read and
written (the line's `.thresholds.json` beside it, `line_thresholds`: never the model file).

Kinds: an exported ONNX (metadata embedded and in a JSON sidecar), a TensorRT engine (sidecar
only, with a build section), a PyTorch checkpoint (metadata in its `meta`) and a served model's
URL (the server holds the metadata). Suffixes and schemes are matched case-insensitively.
Every other module asks this one what a path is instead of comparing suffixes itself.

Torch-free and import-light: the runtime uses it. Embedded metadata is read from the ONNX
file's header without its weights (onnx_header); torch is loaded only to read a checkpoint
(`checkpoint_file`, which imports it inside its reader).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import line_thresholds
from .checkpoint_file import read_checkpoint_file
from .errors import UniadError
from .fileio import require_file
from .metadata import METADATA_KEY, ModelMetadata, Thresholds
from .onnx_header import OnnxHeader, read_onnx_header

log = logging.getLogger(__name__)

ONNX = "onnx"
ENGINE = "engine"
CHECKPOINT = "checkpoint"
URL = "url"
SIDECAR_SUFFIX = ".json"
ENGINE_SECTION = "engine"
CHECKPOINT_FORMAT = "uniad-edge"  # the `format` field of our checkpoints (model.checkpoint)
RATES = "rates"
"""Provenance key: per class (and "global"), what the calibrated threshold did on the
calibration images (good, defective, false_alarm_rate, detection_rate, lowest_good)."""
WARN_FALSE_ALARM_RATE = 0.10
"""A calibrated threshold calling more than this share of the good calibration images NG is
warned about by `calibrate` and at the start of `run` and `serve`."""


@dataclass(frozen=True)
class ArtifactKind:
    """One row of the table: how a kind is recognised and where its metadata lives."""

    name: str
    description: str
    suffixes: tuple[str, ...] = ()
    schemes: tuple[str, ...] = ()
    embedded: bool = False  # metadata inside the file
    sidecar: bool = False  # metadata in <stem>.json beside it

    def accepted(self) -> str:
        """ ".engine/.plan" or "grpc:// or http://" for error messages."""
        if self.schemes:
            return " or ".join(f"{s}://" for s in self.schemes)
        return "/".join(self.suffixes)


KINDS: dict[str, ArtifactKind] = {
    kind.name: kind
    for kind in (
        ArtifactKind(ONNX, "exported ONNX", (".onnx",), embedded=True, sidecar=True),
        ArtifactKind(ENGINE, "TensorRT engine", (".engine", ".plan"), sidecar=True),
        ArtifactKind(
            CHECKPOINT,
            "PyTorch checkpoint",
            (".pth", ".pt", ".pth.tar", ".tar", ".ckpt"),
            embedded=True,
        ),  # fmt: skip
        ArtifactKind(URL, "served model (Triton)", schemes=("grpc", "http")),
    )
}


def url_scheme(model: str | os.PathLike[str]) -> str | None:
    """ "GRPC://host:8001/m" -> "grpc"; None for a file path (Path() would mangle a URL)."""
    if isinstance(model, os.PathLike) or "://" not in model:
        return None
    return model.split("://", 1)[0].lower()


def _suffix_of(name: str, kind: ArtifactKind) -> str | None:
    """The longest of `kind`'s suffixes that `name` ends with (".pth.tar" before ".tar")."""
    lowered = name.lower()
    found = [s for s in kind.suffixes if lowered.endswith(s) and len(lowered) > len(s)]
    return max(found, key=len, default=None)


def kind_of(model: str | os.PathLike[str]) -> ArtifactKind | None:
    """The kind `model` is by its URL scheme or file suffix, or None when none matches."""
    scheme = url_scheme(model)
    for kind in KINDS.values():
        if scheme is not None and scheme in kind.schemes:
            return kind
        if scheme is None and _suffix_of(Path(model).name, kind):
            return kind
    return None


def is_kind(model: str | os.PathLike[str], *names: str) -> bool:
    kind = kind_of(model)
    return kind is not None and kind.name in names


def describe_kinds(names: Iterable[str]) -> str:
    """ "an .onnx, an .engine/.plan or a grpc:// or http:// URL" for one-line errors."""
    parts = [KINDS[n].accepted() for n in names]
    return ", ".join(parts[:-1]) + (" or " if len(parts) > 1 else "") + parts[-1]


def require_kind(model: str | os.PathLike[str], names: Iterable[str], purpose: str) -> ArtifactKind:
    """The kind of `model` when it is one of `names`, else a one-line error naming them."""
    names = tuple(names)
    kind = kind_of(model)
    if kind is None or kind.name not in names:
        raise UniadError(f"cannot {purpose} {model}: use {describe_kinds(names)}")
    return kind


def stem(path: str | os.PathLike[str]) -> str:
    """`runs/a/best.pth` -> `best`, `ckpt.pth.tar` -> `ckpt`, `m.ONNX` -> `m`."""
    name = Path(path).name
    kind = kind_of(Path(name))
    suffix = _suffix_of(name, kind) if kind is not None else None
    return name[: -len(suffix)] if suffix else Path(name).stem


def sidecar_path(model: str | os.PathLike[str]) -> Path:
    """`export/model.onnx` -> `export/model.json`."""
    return Path(model).with_suffix(SIDECAR_SUFFIX)


def read_sidecar_data(model: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The JSON object beside `model`, or None when there is no sidecar file."""
    path = sidecar_path(model)
    return read_json_object(path) if path.is_file() else None


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A sidecar file's JSON object (the one way sidecars are read), or a one-line error."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UniadError(f"cannot read metadata sidecar {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UniadError(f"{path} is not a uniad-edge metadata sidecar (not a JSON object)")
    return data


def parse_metadata(data: str | dict[str, Any], origin: str) -> ModelMetadata:
    """Metadata from its JSON text or object, with a one-line error naming where it came from."""
    try:
        if isinstance(data, str):
            return ModelMetadata.from_json(data)
        return ModelMetadata.from_dict(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise UniadError(f"invalid uniad-edge metadata in {origin}: {exc}") from None


def read_sidecar(model: str | os.PathLike[str]) -> ModelMetadata | None:
    """The sidecar's metadata, or None when there is no sidecar file."""
    data = read_sidecar_data(model)
    return None if data is None else parse_metadata(data, str(sidecar_path(model)))


def onnx_properties(path: str | os.PathLike[str]) -> dict[str, str]:
    """An ONNX file's `metadata_props`, read without its weights (see onnx_header)."""
    return onnx_interface(path).properties


def onnx_interface(path: str | os.PathLike[str]) -> OnnxHeader:
    """`metadata_props` and graph inputs/outputs of an ONNX file, in one line when malformed."""
    path = Path(path)
    require_file(path, "export or train the model first")
    try:
        return read_onnx_header(path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UniadError(f"{path}: not a loadable ONNX model ({exc}); re-export it") from None
    except OSError as exc:
        raise UniadError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def model_metadata(
    model: str | os.PathLike[str], properties: dict[str, str]
) -> tuple[ModelMetadata, str]:
    """The metadata a model runs with (embedded `properties` first, else the sidecar) and where
    it came from. Its thresholds are the export-time defaults; the line's own live beside the
    model (`line_thresholds`)."""
    path = Path(model)
    if METADATA_KEY not in properties:
        sidecar = read_sidecar(path)
        if sidecar is None:
            raise UniadError(
                f"{path} has no uniad-edge metadata (no '{METADATA_KEY}' property and no "
                f"{sidecar_path(path).name} beside it); export it with `uniad-edge export`"
            )
        return sidecar, str(sidecar_path(path))
    return parse_metadata(properties[METADATA_KEY], str(path)), str(path)


def edited_sidecar_note(
    model: str | os.PathLike[str], embedded: ModelMetadata, source: str
) -> str | None:
    """One line when the thresholds in an ONNX's sidecar differ from those embedded in it (the
    metadata `model_metadata` read from `source`), else None. The sidecar is only a copy:
    thresholds a user edits into it decide nothing, and they must not believe they changed the
    decision rule. Pure (no memory of earlier calls): every open that meets the edit says so."""
    path = Path(model)
    if source != str(path):  # read from the sidecar itself: nothing embedded to differ from
        return None
    try:
        sidecar = read_sidecar(path)
    except UniadError as exc:
        return f"{exc}; it is only a copy of the metadata embedded in {path}, which is used"
    if sidecar is None:
        return None
    ours, theirs = embedded.thresholds, sidecar.thresholds
    if (ours.global_, ours.per_class) == (theirs.global_, theirs.per_class):
        return None
    home = line_thresholds.thresholds_path(path)
    return (
        f"the thresholds in {sidecar_path(path)} (global {theirs.global_}, per class "
        f"{dict(theirs.per_class)}) differ from those embedded in {path} and are IGNORED: the "
        f"sidecar is only a copy; the line's thresholds live in {home} (write them with "
        "`uniad-edge calibrate`)"
    )


@dataclass
class Artifact:
    """An opened artifact: its kind, its metadata (None for a checkpoint or URL, whose metadata
    needs torch or the server), where that came from, an engine's build section and one-line
    warnings (such as thresholds edited into an ONNX's sidecar, which decide nothing)."""

    path: Path | str
    kind: ArtifactKind
    metadata: ModelMetadata | None = None
    source: str = ""
    build: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)


def open_artifact(model: str | os.PathLike[str]) -> Artifact:
    """Identify `model` and read its metadata (one reader for every kind); one-line errors for
    an unknown kind, a missing file or unreadable metadata."""
    kind = kind_of(model)
    if kind is None:
        raise UniadError(f"cannot tell what {model} is; use {describe_kinds(KINDS)}")
    if kind.name == URL:
        return Artifact(str(model), kind)
    path = Path(model)
    require_file(path, "export or train the model first")
    if kind.name == CHECKPOINT:
        return Artifact(path, kind)
    data = read_sidecar_data(path)
    if kind.name == ENGINE:
        if data is None:
            raise UniadError(
                f"{path}: no sidecar {sidecar_path(path).name} beside it; rebuild the engine with "
                "`uniad-edge export --format engine` or adopt it with `uniad-edge adopt-engine`"
            )
        build = data.get(ENGINE_SECTION)
        metadata = parse_metadata(data, str(sidecar_path(path)))
        return Artifact(path, kind, metadata, str(sidecar_path(path)), build)
    metadata, source = model_metadata(path, onnx_properties(path))
    note = edited_sidecar_note(path, metadata, source)
    return Artifact(path, kind, metadata, source, warnings=[note] if note else [])


def rate_warning(
    threshold: float, rates: dict[str, Any], warn_rate: float = WARN_FALSE_ALARM_RATE
) -> str | None:
    """Why a threshold would flood the line with false alarms on its own calibration images
    (below every good score, or above `warn_rate` false alarms), or None."""
    lowest, rate = rates.get("lowest_good"), rates.get("false_alarm_rate")
    if lowest is not None and threshold <= lowest:
        return (
            f"threshold {threshold:.6g} lies below every good score (lowest {lowest:.6g}): "
            "every good image is called NG; choose another policy or check the data"
        )
    if rate is not None and rate > warn_rate:
        return (
            f"threshold {threshold:.6g} calls {rate:.0%} of the good calibration images NG "
            f"(more than {warn_rate:.0%}); expect that many false alarms"
        )
    return None


def threshold_warnings(
    thresholds: Thresholds, warn_rate: float = WARN_FALSE_ALARM_RATE
) -> list[str]:
    """The `rate_warning` of every calibrated threshold, from the rates recorded at calibration:
    the hook `run` and `serve` call at start."""
    recorded = thresholds.provenance.get(RATES) or {}
    found = []
    for name, rates in recorded.items():
        value = thresholds.global_ if name == "global" else thresholds.per_class.get(name)
        problem = None if value is None else rate_warning(value, rates, warn_rate)
        if problem:
            found.append(f"{name}: {problem}")
    return found


# --- thresholds: the line's file beside the model (`line_thresholds`), never the model -------


def _parse_thresholds(data: Any, origin: Path | str) -> Thresholds:
    try:
        return Thresholds.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise UniadError(f"{origin}: {exc}") from None


def _checkpoint_payload(path: Path) -> dict[str, Any]:
    payload = read_checkpoint_file(path)
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise UniadError(
            f"{path} is not a uniad-edge checkpoint (an official UniAD one has no place for "
            "thresholds); export it with `uniad-edge export` and calibrate the .onnx"
        )
    return payload


def _thresholds_kind(path: Path) -> ArtifactKind:
    return require_kind(path, (ONNX, ENGINE, CHECKPOINT), "store thresholds in")


def _weights(path: Path, kind: ArtifactKind) -> ModelMetadata | None:
    """The metadata of an exported model (None for a checkpoint: its weights need torch)."""
    if kind.name == CHECKPOINT:
        return None
    metadata = open_artifact(path).metadata
    if metadata is None:
        raise UniadError(
            f"{path} has no uniad-edge metadata and no sidecar {sidecar_path(path).name}"
        )
    return metadata


def read_thresholds(model: str | os.PathLike[str]) -> Thresholds:
    """The thresholds `model` decides with on this line: its `.thresholds.json` when there is
    one for its weights, else the ones recorded in the model at export (or training)."""
    path = Path(model)
    kind = _thresholds_kind(path)
    if not path.is_file():
        raise UniadError(f"{path}: no such file; export or train the model first")
    metadata = _weights(path, kind)
    if metadata is not None:
        return line_thresholds.in_force(metadata, line_thresholds.thresholds_path(path)).thresholds
    home = line_thresholds.thresholds_path(path)
    if home.is_file():
        return line_thresholds.read_file(home)[0]
    return _parse_thresholds((_checkpoint_payload(path).get("meta") or {}).get("thresholds"), path)


@contextlib.contextmanager
def lock_artifact(model: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive lock on `model` (a `.lock` file beside its real file) for one writer;
    a second writer is refused with one line instead of silently losing one set of thresholds."""
    import fcntl

    lock = Path(os.path.realpath(model))
    lock = lock.with_name(lock.name + ".lock")
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise UniadError(f"cannot lock {model} ({lock}: {exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UniadError(
                f"{model} is being calibrated by another process (lock {lock}); wait for it to "
                "finish and run again"
            ) from None
        try:  # the holder before us may have removed the file: lock the one on disk
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


def write_thresholds(
    model: str | os.PathLike[str], thresholds: Thresholds, force: bool = False
) -> list[Path]:
    """Store `thresholds` as the line's for `model`: only its `.thresholds.json` is written
    (atomically); the model itself is never rewritten. Returns the file written."""
    path = Path(model)
    kind = _thresholds_kind(path)
    if not path.is_file():
        raise UniadError(f"{path}: no such file; export or train the model first")
    metadata = _weights(path, kind)
    weights = None if metadata is None else line_thresholds.weights_id(metadata)
    return [
        line_thresholds.write(line_thresholds.thresholds_path(path), thresholds, weights, force)
    ]
