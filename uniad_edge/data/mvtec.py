"""MVTec-AD folder layout: ROOT/CLASS/{train/good, test/DEFECT, ground_truth/DEFECT/NAME_mask.png}.

The synthetic dataset and most industrial datasets use the same layout, so this is the default.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import UniadError
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

SPLITS = ("train", "test")
CLASS_FOLDERS = ("train", "test", "ground_truth")


def is_mvtec_class(folder: Path) -> bool:
    return (folder / "train").is_dir() or (folder / "test").is_dir()


def find_classes(root: Path) -> list[str]:
    """Sub-folders of `root` that look like MVTec classes (have train/ or test/)."""
    return sorted(p.name for p in root.iterdir() if is_visible_dir(p) and is_mvtec_class(p))


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise UniadError(f"unknown split {split!r}; use 'train' or 'test'")
    return split


def select_classes(available: list[str], classes: Sequence[str] | None, root: Path) -> list[str]:
    """Requested classes in the given order, or all of them; unknown names are an error."""
    if not available:
        raise UniadError(
            f"no classes in {root}: expected sub-folders like {root}/CLASS/train/good; "
            "point to the dataset root"
        )
    if classes is None:
        return available
    missing = [c for c in classes if c not in available]
    if missing:
        raise UniadError(
            f"class {missing[0]!r} not found in {root}; available: {', '.join(available)}"
        )
    return list(dict.fromkeys(classes))


def layout_warnings(root: Path, name: str, split: str) -> list[str]:
    """What a class folder holds that the MVTec layout does not read, or lacks for a split."""
    class_dir, found = root / name, []
    extra = unread_folders(class_dir, CLASS_FOLDERS)
    if extra:
        found.append(
            f"{class_dir}: ignored folders {', '.join(extra)} (MVTec reads train/good, "
            "test/DEFECT and ground_truth/DEFECT)"
        )
    split_dir = class_dir / split
    if split == "train" and split_dir.is_dir():
        extra = unread_folders(split_dir, (GOOD,))
        if extra:
            found.append(f"{split_dir}: ignored folders {', '.join(extra)} (training reads good/)")
    if split == "test" and split_dir.is_dir() and not (split_dir / GOOD).is_dir():
        found.append(f"{split_dir} has no good/ folder: false-alarm rates cannot be measured")
    return found


def _class_samples(root: Path, name: str, split: str, skips: Skips) -> list[Sample]:
    class_dir = root / name
    split_dir = require_dir(
        class_dir / split, f"{split} folder of class {name!r}", "add it or leave the class out"
    )
    if split == "train":
        good_dir = require_dir(
            split_dir / GOOD, "training folder", "put the good training images there"
        )
        defect_dirs = [good_dir]
    else:
        defect_dirs = sorted(p for p in split_dir.iterdir() if is_visible_dir(p))
    gt_dir = class_dir / "ground_truth"
    samples = []
    for folder in defect_dirs:
        defect = folder.name
        for path in list_images(folder, skips):
            mask = None
            if defect != GOOD and gt_dir.is_dir():
                mask = gt_dir / defect / f"{path.stem}_mask.png"
                if not mask.is_file():
                    raise UniadError(
                        f"mask {mask} for {path} is missing; add it, or remove {gt_dir} "
                        "to use image-level labels only"
                    )
            samples.append(Sample(path, int(defect != GOOD), name, defect, mask))
    if not samples:
        raise UniadError(
            f"class {name!r} has no images in {split_dir}; add images or leave the class out"
        )
    return samples


def read_mvtec(
    root: str | Path, split: str = "train", classes: Sequence[str] | None = None
) -> SampleSet:
    """All samples of `split` for the chosen classes (None: every class found), in a stable order.

    Several classes together form the unified (one model for all classes) training set.
    """
    root = require_dir(Path(root), "dataset folder", "check the path")
    check_split(split)
    skips = Skips()
    samples, warnings = [], []
    others = [p.name for p in root.iterdir() if is_visible_dir(p) and not is_mvtec_class(p)]
    if others and classes is None:
        warnings.append(
            f"{root}: ignored folders without train/ or test/: {', '.join(sorted(others))}"
        )
    for name in select_classes(find_classes(root), classes, root):
        samples.extend(_class_samples(root, name, split, skips))
        warnings.extend(layout_warnings(root, name, split))
    return SampleSet(samples, "mvtec", root, split, skips.count, skips.examples, warnings)
