"""Datasets without torch: readers for MVTec-AD, UniAD meta files, CIFAR-10 and plain folders,
plus a synthetic MVTec-style dataset. The runtime and the demo use these too.
"""

from .cifar import CIFAR_CLASSES, PAPER_NORMAL_SETS, read_cifar
from .detect import LAYOUTS, detect_layout, open_dataset
from .folder import read_folder
from .meta import read_meta
from .mvtec import read_mvtec
from .sample import (
    IMAGE_EXTENSIONS,
    Record,
    Sample,
    SampleSet,
    load_image,
    load_mask,
    load_record,
)

__all__ = [
    "CIFAR_CLASSES",
    "IMAGE_EXTENSIONS",
    "LAYOUTS",
    "PAPER_NORMAL_SETS",
    "Record",
    "Sample",
    "SampleSet",
    "detect_layout",
    "load_image",
    "load_mask",
    "load_record",
    "open_dataset",
    "read_cifar",
    "read_folder",
    "read_meta",
    "read_mvtec",
]
