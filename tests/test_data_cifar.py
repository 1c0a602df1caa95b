"""CIFAR-10 one-vs-rest from python batches written here, and refusal of crafted pickles."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from uniad_edge.data import CIFAR_CLASSES, load_image, load_mask, open_dataset, read_cifar
from uniad_edge.errors import UniadError


def _batch(path: Path, labels: list[int], protocol: int = 2) -> None:
    """A batch like the real files: planar RGB rows; red = 10 * label, green 100, blue 200."""
    data = np.zeros((len(labels), 3, 1024), np.uint8)
    data[:, 0] = np.asarray(labels, np.uint8)[:, None] * 10
    data[:, 1], data[:, 2] = 100, 200
    batch = {
        b"batch_label": b"synthetic batch",
        b"labels": labels,
        b"data": data.reshape(len(labels), 3072),
        b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
    }
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


@pytest.fixture
def cifar(tmp_path: Path) -> Path:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for b in range(1, 6):
        _batch(folder / f"data_batch_{b}", [(b + i) % 10 for i in range(10)], protocol=b % 6)
    _batch(folder / "test_batch", [i % 10 for i in range(20)])
    legacy = folder / "data_batch_2"  # numpy 1.x (and the real files) name numpy.core
    raw = legacy.read_bytes()
    assert b"numpy._core.multiarray" in raw
    legacy.write_bytes(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    return folder


def test_train_keeps_only_normal_classes_of_training_batches(cifar: Path) -> None:
    train = read_cifar(cifar, "train", normal=(0, 1, 2, 3, 4))
    assert len(train) == 25
    assert all(s.label == 0 for s in train)
    assert set(train.class_names) == set(CIFAR_CLASSES[:5])
    image = load_image(train[0])
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8
    index = CIFAR_CLASSES.index(train[0].class_name)
    assert tuple(image[5, 7]) == (200, 100, 10 * index)  # BGR from planar RGB


def test_test_split_is_all_of_test_batch_with_one_vs_rest_labels(cifar: Path) -> None:
    test = read_cifar(cifar, "test", normal=["bird", "cat", 8])
    assert len(test) == 20
    for sample in test:
        normal = sample.class_name in ("bird", "cat", "ship")
        assert sample.label == (0 if normal else 1)
        assert sample.defect == ("good" if normal else "outlier")
    assert "test_batch#3" in str(test[3].path)
    assert test[2].class_name == "bird" and not load_mask(test[2], (32, 32)).any()
    assert test[0].label == 1 and load_mask(test[0], (32, 32)) is None  # image-level only


def test_open_dataset_finds_batches_and_defaults_to_paper_split(cifar: Path) -> None:
    dataset = open_dataset(cifar.parent, "test")
    assert dataset.layout == "cifar10"
    assert sum(s.label for s in dataset) == 10  # {0..4} normal by default
    with pytest.raises(UniadError, match="unknown CIFAR-10 class 'unicorn'"):
        read_cifar(cifar, "train", normal=["unicorn"])
    with pytest.raises(UniadError, match="proper subset"):
        read_cifar(cifar, "train", normal=range(10))


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_without_running_code(cifar: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = marker
    (cifar / "test_batch").write_bytes(pickle.dumps({b"data": exploit, b"labels": []}, protocol=2))
    with pytest.raises(UniadError, match="not a safe CIFAR-10 batch.*not allowed"):
        read_cifar(cifar, "test")
    assert not marker.exists()


def test_damaged_batches_are_errors(cifar: Path) -> None:
    (cifar / "test_batch").write_bytes(pickle.dumps({b"data": b"\0" * 3072, b"labels": [1, 2]}))
    with pytest.raises(UniadError, match="b'labels' does not match"):
        read_cifar(cifar, "test")
    (cifar / "test_batch").write_bytes(b"garbage")
    with pytest.raises(UniadError, match="test_batch is not a safe CIFAR-10 batch"):
        read_cifar(cifar, "test")
    (cifar / "data_batch_3").unlink()
    with pytest.raises(UniadError, match="data_batch_3 is missing"):
        read_cifar(cifar, "train")
