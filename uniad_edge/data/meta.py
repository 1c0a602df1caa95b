"""Official UniAD meta files: JSON lines with filename, label, label_name, clsname, maskname.

Lets users reuse the exact train/test lists of the official repository (its `train.json` and
`test.json`), with paths relative to an image root folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import UniadError
from .sample import GOOD, Sample, SampleSet, is_image_file, require_dir

META_SUFFIXES = (".json", ".jsonl")


def _entry(line: str, where: str) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UniadError(
            f"{where} is not valid JSON ({exc.msg}); write one JSON object per line"
        ) from None
    if not isinstance(entry, dict) or "filename" not in entry or "label" not in entry:
        raise UniadError(f"{where} needs at least 'filename' and 'label'; fix that line")
    return entry


def _sample(entry: dict[str, Any], image_root: Path, where: str) -> Sample:
    path = image_root / str(entry["filename"])
    if not path.is_file():
        raise UniadError(
            f"{where}: image {path} does not exist; pass the folder the filenames are "
            "relative to as the image root"
        )
    if not is_image_file(path):
        raise UniadError(f"{where}: {path} is not an image file; remove that line")
    try:
        label = int(entry["label"])
    except (TypeError, ValueError):
        label = -1
    if label not in (0, 1):
        raise UniadError(f"{where}: label must be 0 (good) or 1 (anomalous)")
    mask = None
    if entry.get("maskname"):
        mask = image_root / str(entry["maskname"])
        if not mask.is_file():
            raise UniadError(f"{where}: mask {mask} does not exist; add it or drop 'maskname'")
    class_name = str(entry.get("clsname") or path.parent.parent.parent.name)
    if label == 0:
        defect = GOOD
    elif path.parent.name not in (GOOD, "") and path.parent.name != class_name:
        defect = path.parent.name
    else:
        defect = str(entry.get("label_name") or "defective")
    return Sample(path, label, class_name, defect, mask)


def read_meta(
    meta_file: str | Path,
    image_root: str | Path | None = None,
    classes: Sequence[str] | None = None,
) -> SampleSet:
    """Samples listed in a JSON-lines meta file (image_root defaults to the file's folder)."""
    meta_file = Path(meta_file)
    if not meta_file.is_file():
        raise UniadError(f"meta file {meta_file} does not exist; check the path")
    root = require_dir(
        Path(image_root) if image_root is not None else meta_file.parent,
        "image root",
        "pass the folder the meta file's filenames are relative to",
    )
    try:
        lines = meta_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UniadError(f"cannot read meta file {meta_file}: {exc}; check the file") from None
    samples = [
        _sample(_entry(line, f"{meta_file} line {n}"), root, f"{meta_file} line {n}")
        for n, line in enumerate(lines, 1)
        if line.strip()
    ]
    if classes is not None:
        found = sorted({s.class_name for s in samples})
        missing = [c for c in classes if c not in found]
        if missing:
            raise UniadError(
                f"class {missing[0]!r} not in {meta_file}; available: {', '.join(found)}"
            )
        samples = [s for s in samples if s.class_name in set(classes)]
    if not samples:
        raise UniadError(f"meta file {meta_file} lists no images; add JSON lines to it")
    return SampleSet(samples, "meta", root, meta_file.stem)
