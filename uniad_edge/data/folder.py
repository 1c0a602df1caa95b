"""A user's own product photos: DIR/good/* (required), DIR/bad/* or DIR/anomalous/* (optional),
DIR/masks/NAME.png or NAME_mask.png (optional). Class name = folder name.

A folder whose sub-folders each look like that is read as several classes. There is no
train/test split on disk, so a fixed share of the good images (every k-th, by sorted name) is
held out for testing; train and test never share an image.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import UniadError
from .mvtec import check_split, select_classes
from .sample import (
    GOOD,
    Sample,
    SampleSet,
    Skips,
    is_visible_dir,
    list_images,
    require_dir,
    unread_folders,
)

BAD_FOLDERS = ("bad", "anomalous")
MASK_FOLDER = "masks"


def is_plain_class(folder: Path) -> bool:
    return (folder / GOOD).is_dir()


def _mask_for(image: Path, mask_dir: Path) -> Path | None:
    for name in (f"{image.stem}.png", f"{image.stem}_mask.png"):
        if (mask_dir / name).is_file():
            return mask_dir / name
    return None


def _holdout(good: list[Path], fraction: float) -> set[Path]:
    """Every k-th good image (k = 1 / fraction), deterministic and spread over the folder;
    fraction 1 holds out all of them (a validation set for `calibrate`)."""
    if fraction >= 1:
        return set(good)
    if fraction <= 0 or len(good) < 2:
        return set()
    step = max(2, round(1 / fraction))
    return set(good[step - 1 :: step]) or {good[-1]}


def _class_samples(folder: Path, split: str, holdout: float, skips: Skips) -> list[Sample]:
    name = folder.name
    good = list_images(folder / GOOD, skips)
    if not good:
        raise UniadError(f"{folder / GOOD} has no images; add good photos of {name!r}")
    held = _holdout(good, holdout)
    if split == "train":
        return [Sample(p, 0, name) for p in good if p not in held]
    samples = [Sample(p, 0, name) for p in good if p in held]
    mask_dir = folder / MASK_FOLDER
    for bad_name in BAD_FOLDERS:
        bad_dir = folder / bad_name
        if not bad_dir.is_dir():
            continue
        for path in list_images(bad_dir, skips):
            mask = _mask_for(path, mask_dir) if mask_dir.is_dir() else None
            samples.append(Sample(path, 1, name, bad_name, mask))
    if not samples:
        raise UniadError(f"{folder} has no test images; add {folder}/bad/ or hold out good images")
    return samples


def read_folder(
    root: str | Path,
    split: str = "train",
    classes: Sequence[str] | None = None,
    holdout: float = 0.2,
) -> SampleSet:
    """Samples of a plain good/bad folder, or of each such sub-folder (one class each).

    `holdout` is the share of good images kept out of training for the test split (1: all).
    """
    root = require_dir(Path(root), "image folder", "check the path")
    check_split(split)
    if not 0 <= holdout <= 1:
        raise UniadError(f"holdout must be in [0, 1], got {holdout}")
    skips = Skips()
    if is_plain_class(root):
        select_classes([root.name], classes, root.parent)
        folders = [root]
    else:
        available = sorted(
            p.name for p in root.iterdir() if is_visible_dir(p) and is_plain_class(p)
        )
        if not available:
            raise UniadError(
                f"{root} has no good/ folder; put good images in {root}/good "
                "(and defective ones in bad/)"
            )
        folders = [root / name for name in select_classes(available, classes, root)]
    samples, warnings = [], []
    for folder in folders:
        samples.extend(_class_samples(folder, split, holdout, skips))
        warnings.extend(_warnings(folder, split, holdout))
    if not is_plain_class(root):
        others = unread_folders(root, [f.name for f in folders])
        if others and classes is None:
            warnings.append(f"{root}: ignored folders without good/: {', '.join(others)}")
    return SampleSet(samples, "folder", root, split, skips.count, skips.examples, warnings)


def _warnings(folder: Path, split: str, holdout: float) -> list[str]:
    """Unread sub-folders (an MVTec test/ folder given directly has defect folders such as
    scratch/), and how few good images a test split of this layout holds."""
    found = []
    extra = unread_folders(folder, (GOOD, *BAD_FOLDERS, MASK_FOLDER))
    if extra:
        hint = ""
        if folder.name in ("test", "train") and is_visible_dir(folder.parent / "train"):
            hint = f"; for the MVTec layout pass the dataset root {folder.parent.parent}"
        found.append(
            f"{folder}: ignored folders {', '.join(extra)} (the folder layout reads good/, "
            f"{'/, '.join(BAD_FOLDERS)}/ and {MASK_FOLDER}/){hint}"
        )
    if split == "test" and 0 < holdout < 1:
        found.append(
            f"{folder}: folder layout: only every {max(2, round(1 / holdout))}th good image is a "
            "test image (the others are training images)"
        )
    return found
