"""CIFAR-10 one-vs-rest (the paper's multi-class novelty setting) from the python batches.

The batches are pickles; this is the only pickle the toolkit reads, through an unpickler that
allows plain containers and the few numpy names an array needs, so a crafted file cannot run
code. Images stay in memory (60,000 x 32x32 is 180 MB at most).
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UniadError
from .sample import GOOD, Sample, SampleSet, require_dir

CIFAR_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
FOLDER = "cifar-10-batches-py"
# The paper's four settings; the first is the default.
PAPER_NORMAL_SETS = ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9), (0, 2, 4, 6, 8), (1, 3, 5, 7, 9))


def _latin1(text: str, encoding: str) -> bytes:
    """Python 3 pickles of bytes at protocol 2 call `_codecs.encode(text, "latin1")`."""
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"codec {encoding!r} is not allowed")
    return text.encode("latin1")


def _allowed_globals() -> dict[tuple[str, str], Any]:
    probe = np.zeros(1, np.uint8)
    reconstruct, frombuffer = probe.__reduce__()[0], probe.__reduce_ex__(5)[0]
    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return allowed


_ALLOWED = _allowed_globals()


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only numpy's array constructors; any other global (os.system...) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed") from None


def load_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    """Images (N, 32, 32, 3) uint8 BGR and labels of one CIFAR-10 python batch file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UniadError(f"cannot read {path}: {exc.strerror or exc}; check the file") from None
    try:
        batch = _RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # any unpickling failure means the file is not a CIFAR batch
        raise UniadError(
            f"{path} is not a safe CIFAR-10 batch ({exc}); re-download cifar-10-python.tar.gz"
        ) from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise UniadError(f"{path} has no b'data'/b'labels'; re-download cifar-10-python.tar.gz")
    data, labels = batch[b"data"], batch[b"labels"]
    if isinstance(data, bytes):
        data = np.frombuffer(data, np.uint8)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.size % 3072:
        raise UniadError(f"{path}: b'data' is not uint8 rows of 3072; re-download the dataset")
    data = data.reshape(-1, 3072)
    if not isinstance(labels, list) or len(labels) != len(data):
        raise UniadError(f"{path}: b'labels' does not match b'data'; re-download the dataset")
    labels = [int(v) for v in labels]
    if any(not 0 <= v < 10 for v in labels):
        raise UniadError(f"{path}: labels must be 0..9; re-download the dataset")
    rgb = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(rgb[..., ::-1]), labels


def normal_indices(classes: Sequence[int | str] | None) -> tuple[int, ...]:
    """Normal CIFAR classes as indices, from indices or names (None: the paper's {0..4})."""
    if classes is None:
        return PAPER_NORMAL_SETS[0]
    indices = []
    for c in classes:
        text = str(c).strip()
        if text.isdigit() and int(text) < 10:
            indices.append(int(text))
        elif text in CIFAR_CLASSES:
            indices.append(CIFAR_CLASSES.index(text))
        else:
            raise UniadError(
                f"unknown CIFAR-10 class {c!r}; use 0-9 or one of {', '.join(CIFAR_CLASSES)}"
            )
    if not indices or len(set(indices)) == 10:
        raise UniadError("CIFAR-10 normal classes must be a non-empty proper subset of 0-9")
    return tuple(sorted(set(indices)))


def find_cifar_dir(path: Path) -> Path | None:
    """The folder holding the batches: `path` itself or its cifar-10-batches-py child."""
    for folder in (path, path / FOLDER):
        if (folder / TEST_BATCH).is_file() or (folder / TRAIN_BATCHES[0]).is_file():
            return folder
    return None


def read_cifar(
    root: str | Path, split: str = "train", normal: Sequence[int | str] | None = None
) -> SampleSet:
    """One-vs-rest CIFAR-10: train = normal classes of the training batches; test = all of
    test_batch with label 1 for every image outside the normal classes.
    """
    root = require_dir(Path(root), "CIFAR-10 folder", "extract cifar-10-python.tar.gz there")
    folder = find_cifar_dir(root)
    if folder is None:
        raise UniadError(f"{root} holds no CIFAR-10 python batches; point to {FOLDER}")
    if split not in ("train", "test"):
        raise UniadError(f"unknown split {split!r}; use 'train' or 'test'")
    keep = set(normal_indices(normal))
    names = TRAIN_BATCHES if split == "train" else (TEST_BATCH,)
    samples = []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise UniadError(f"CIFAR-10 batch {path} is missing; re-extract the dataset")
        images, labels = load_batch(path)
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            if split == "train" and label not in keep:
                continue
            anomalous = int(label not in keep)
            samples.append(
                Sample(
                    path=Path(f"{path}#{i}"),
                    label=anomalous,
                    class_name=CIFAR_CLASSES[label],
                    defect="outlier" if anomalous else GOOD,
                    image=image,
                )
            )
    return SampleSet(samples, "cifar10", folder, split)
