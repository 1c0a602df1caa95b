"""One entry point that recognises a dataset's layout, so every command takes a plain path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import UniadError
from .cifar import find_cifar_dir, read_cifar
from .folder import is_plain_class, read_folder
from .meta import META_SUFFIXES, read_meta
from .mvtec import check_split, find_classes, is_mvtec_class, read_mvtec
from .sample import SampleSet

LAYOUTS = ("mvtec", "meta", "cifar10", "folder")


def _meta_file(folder: Path, split: str) -> Path | None:
    for suffix in META_SUFFIXES:
        if (folder / f"{split}{suffix}").is_file():
            return folder / f"{split}{suffix}"
    return None


def detect_layout(path: str | Path, split: str = "train") -> str:
    """Name of the layout at `path` (one of LAYOUTS), or a one-line error saying what was seen."""
    path = Path(path)
    if not path.exists():
        raise UniadError(f"dataset path {path} does not exist; check the path")
    if path.is_file():
        if path.suffix.lower() in META_SUFFIXES:
            return "meta"
        raise UniadError(
            f"{path} is a file but not a .json/.jsonl meta file; pass a dataset folder instead"
        )
    if find_cifar_dir(path) is not None:
        return "cifar10"
    if _meta_file(path, split) is not None:
        return "meta"
    if is_mvtec_class(path) or find_classes(path):
        return "mvtec"
    if is_plain_class(path) or any(p.is_dir() and is_plain_class(p) for p in path.iterdir()):
        return "folder"
    raise UniadError(
        f"cannot tell the dataset layout of {path}: expected MVTec (CLASS/train/good), "
        "a .json/.jsonl meta file, cifar-10-batches-py, or a folder with good/ (and bad/)"
    )


def open_dataset(
    path: str | Path,
    split: str = "train",
    classes: Sequence[str | int] | None = None,
    *,
    image_root: str | Path | None = None,
    holdout: float = 0.2,
) -> SampleSet:
    """Read any supported dataset at `path` for `split` ("train" or "test").

    `classes` selects classes (None: all); for CIFAR-10 it names the normal classes of the
    one-vs-rest setting (indices or names; None: the paper's {0,1,2,3,4}). `image_root` is
    where a meta file's filenames live (default: the meta file's folder); `holdout` is the
    share of good images a plain folder keeps for testing.
    """
    path = Path(path)
    check_split(split)
    layout = detect_layout(path, split)
    names = None if classes is None else [str(c) for c in classes]
    if layout == "cifar10":
        return read_cifar(path, split, classes)
    if layout == "meta":
        meta = path if path.is_file() else _meta_file(path, split)
        return read_meta(meta, image_root, names)
    if layout == "mvtec":
        if is_mvtec_class(path):
            return read_mvtec(path.parent, split, names or [path.name])
        return read_mvtec(path, split, names)
    return read_folder(path, split, names, holdout)
