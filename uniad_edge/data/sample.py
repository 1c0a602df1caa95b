"""The record every reader produces, and the loaders that turn it into pixels.

Readers only list files (cheap); pixels are decoded on demand so a 5000-image dataset opens
instantly and a training loader can read images in worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import UniadError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
GOOD = "good"


@dataclass(frozen=True)
class Sample:
    """One image of a dataset: where it is, whether it is anomalous, and where its mask is.

    `image` holds the pixels (uint8 BGR HxWx3) for datasets that are not files (CIFAR-10);
    `path` is then a readable pseudo-path such as `.../test_batch#17` used in messages.
    """

    path: Path
    label: int
    class_name: str
    defect: str = GOOD
    mask_path: Path | None = None
    image: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def mask_known(self) -> bool:
        """True when a pixel mask exists: good images (all zeros) or anomalies with a mask file."""
        return self.label == 0 or self.mask_path is not None


@dataclass
class Record:
    """A sample with its pixels loaded: what a training loader or an evaluator consumes."""

    image: np.ndarray
    mask: np.ndarray | None
    label: int
    class_name: str
    defect: str
    path: Path


def is_visible_dir(path: Path) -> bool:
    """Sub-folders that hold data; hidden ones (.ipynb_checkpoints, .git) are not classes."""
    return path.is_dir() and not path.name.startswith(".")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _read(path: Path, flags: int, what: str) -> np.ndarray:
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise UniadError(
            f"cannot read {what} {path}: {exc.strerror or exc}; check that it is readable"
        ) from None
    pixels = cv2.imdecode(data, flags) if data.size else None
    if pixels is None:
        raise UniadError(
            f"{what} {path} is not a readable image; replace it with a valid PNG/JPEG or delete it"
        )
    return pixels


def load_image(sample: Sample) -> np.ndarray:
    """Pixels of a sample as uint8 BGR HxWx3 (OpenCV converts grey and 16-bit files)."""
    if sample.image is not None:
        return sample.image
    return _read(sample.path, cv2.IMREAD_COLOR, "image")


def load_mask(sample: Sample, shape: Sequence[int]) -> np.ndarray | None:
    """Ground-truth mask as uint8 HxW in {0, 1} matching an image of `shape` (HxW or HxWxC).

    Good samples get zeros. An anomalous sample without a mask file returns None: its defect
    location is unknown, so pixel metrics must skip it rather than score it against zeros.
    """
    height, width = int(shape[0]), int(shape[1])
    if sample.mask_path is None:
        return np.zeros((height, width), np.uint8) if sample.label == 0 else None
    mask = _read(sample.mask_path, cv2.IMREAD_GRAYSCALE, "mask")
    if mask.shape != (height, width):
        raise UniadError(
            f"mask {sample.mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image "
            f"{sample.path} is {width}x{height}; resize the mask to the image size"
        )
    threshold = 0 if mask.max() <= 1 else 127
    return (mask > threshold).astype(np.uint8)


def load_record(sample: Sample) -> Record:
    """Image and mask of a sample, checked against each other."""
    image = load_image(sample)
    return Record(
        image=image,
        mask=load_mask(sample, image.shape),
        label=sample.label,
        class_name=sample.class_name,
        defect=sample.defect,
        path=sample.path,
    )


@dataclass
class SampleSet:
    """The samples of one split plus what the reader left out, so nothing is dropped silently."""

    samples: list[Sample]
    layout: str
    root: Path
    split: str
    skipped: int = 0
    skipped_examples: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # folders the layout did not read

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    @property
    def class_names(self) -> list[str]:
        return sorted({s.class_name for s in self.samples})

    def records(self) -> Iterator[Record]:
        """Load every sample in order; fails on the first unreadable image or mismatched mask."""
        return (load_record(s) for s in self.samples)

    def summary(self) -> str:
        """One line for logs: counts per label and what was skipped."""
        anomalous = sum(s.label for s in self.samples)
        text = (
            f"{self.layout} {self.split} at {self.root}: {len(self.samples)} images "
            f"({len(self.samples) - anomalous} good, {anomalous} anomalous) in "
            f"{len(self.class_names)} classes"
        )
        if self.skipped:
            names = ", ".join(p.name for p in self.skipped_examples[:3])
            text += f"; skipped {self.skipped} non-image files (e.g. {names})"
        return text


class Skips:
    """Counts non-image files a reader passes over and keeps a few names for the summary."""

    def __init__(self) -> None:
        self.count = 0
        self.examples: list[Path] = []

    def add(self, path: Path) -> None:
        self.count += 1
        if len(self.examples) < 5:
            self.examples.append(path)


def list_images(folder: Path, skips: Skips) -> list[Path]:
    """Image files of one folder, sorted; other files are counted, empty images are refused."""
    images = []
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            continue
        if not is_image_file(path):
            skips.add(path)
            continue
        if path.stat().st_size == 0:
            raise UniadError(f"image {path} is an empty file; replace it or delete it")
        images.append(path)
    return images


def unread_folders(folder: Path, known: Sequence[str]) -> list[str]:
    """Visible sub-folders of `folder` that a layout does not read, sorted."""
    return sorted(p.name for p in folder.iterdir() if is_visible_dir(p) and p.name not in known)


def require_dir(path: Path, what: str, fix: str) -> Path:
    if not path.is_dir():
        raise UniadError(f"{what} {path} does not exist; {fix}")
    return path
