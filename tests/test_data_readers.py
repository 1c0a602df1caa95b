"""Readers for MVTec, UniAD meta files and plain folders, on tiny datasets written here."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from uniad_edge.data import (
    detect_layout,
    load_image,
    load_mask,
    load_record,
    open_dataset,
    read_folder,
    read_meta,
    read_mvtec,
)
from uniad_edge.errors import UniadError


def _png(path: Path, value: int = 128, size: tuple[int, int] = (24, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((*size, 3), value, np.uint8)
    image[0, 0] = (10, 20, 30)  # a BGR marker to check channel order on reading
    assert cv2.imwrite(str(path), image)
    return path


def _mask(path: Path, box: tuple[int, int, int, int], size: tuple[int, int] = (24, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.zeros(size, np.uint8)
    y0, y1, x0, x1 = box
    mask[y0:y1, x0:x1] = 255
    assert cv2.imwrite(str(path), mask)
    return path


def _fails(match: str, call, *args, **kwargs) -> str:
    with pytest.raises(UniadError, match=match) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, "errors must be one line"
    return message


@pytest.fixture
def mvtec(tmp_path: Path) -> Path:
    root = tmp_path / "mvtec"
    for name in ("bottle", "cable"):
        for i in range(3):
            _png(root / name / "train" / "good" / f"{i:03d}.png")
        _png(root / name / "test" / "good" / "000.png")
        _png(root / name / "test" / "crack" / "000.png", 60)
        _png(root / name / "test" / "crack" / "001.png", 60)
        _mask(root / name / "ground_truth" / "crack" / "000_mask.png", (2, 6, 3, 9))
        _mask(root / name / "ground_truth" / "crack" / "001_mask.png", (10, 12, 0, 32))
    (root / "bottle" / "train" / "good" / ".DS_Store").write_bytes(b"\0\1")
    (root / "bottle" / "train" / "good" / "notes.txt").write_text("hello")
    (root / "license.txt").write_text("not a class")
    (root / ".cache" / "train").mkdir(parents=True)  # hidden folders are neither classes
    (root / "cable" / "test" / ".ipynb_checkpoints").mkdir()  # nor defect types
    return root


def test_mvtec_train_is_unified_over_classes_and_counts_skipped_files(mvtec: Path) -> None:
    train = read_mvtec(mvtec, "train")
    assert len(train) == 6
    assert train.class_names == ["bottle", "cable"]
    assert all(s.label == 0 and s.defect == "good" and s.mask_path is None for s in train)
    assert train.skipped == 2
    assert "skipped 2" in train.summary()
    image = load_image(train[0])
    assert image.shape == (24, 32, 3) and image.dtype == np.uint8
    assert tuple(image[0, 0]) == (10, 20, 30)


def test_mvtec_test_split_has_labels_defects_and_masks(mvtec: Path) -> None:
    test = read_mvtec(mvtec, "test", classes=["cable"])
    assert [(s.label, s.defect) for s in test] == [(1, "crack"), (1, "crack"), (0, "good")]
    record = load_record(test[0])
    assert record.mask is not None and record.mask.dtype == np.uint8
    assert set(np.unique(record.mask)) == {0, 1}
    assert record.mask.sum() == 4 * 6 and record.mask[2:6, 3:9].all()
    good = load_record(test[2])
    assert good.mask is not None and good.mask.shape == (24, 32) and not good.mask.any()


def test_mvtec_class_selection_and_class_folder(mvtec: Path) -> None:
    _fails("'screw' not found.*available: bottle, cable", read_mvtec, mvtec, "test", ["screw"])
    single = open_dataset(mvtec / "bottle", "test")
    assert single.class_names == ["bottle"] and single.layout == "mvtec"
    _fails("unknown split", read_mvtec, mvtec, "val")


def test_mvtec_bad_inputs(mvtec: Path, tmp_path: Path) -> None:
    _fails("does not exist", read_mvtec, tmp_path / "nowhere")
    (mvtec / "empty" / "train" / "good").mkdir(parents=True)
    assert "'empty'" in _fails("has no images", read_mvtec, mvtec, "train")

    (mvtec / "bottle" / "ground_truth" / "crack" / "001_mask.png").unlink()
    _fails("001_mask.png.*missing", read_mvtec, mvtec, "test", ["bottle"])


def test_unreadable_image_and_mask_size_mismatch_are_errors(mvtec: Path) -> None:
    bad = mvtec / "cable" / "train" / "good" / "001.png"
    bad.write_bytes(b"this is text, not a PNG")
    broken = [s for s in read_mvtec(mvtec, "train", ["cable"]) if s.path == bad][0]
    assert "001.png" in _fails("not a readable image", load_image, broken)

    (mvtec / "cable" / "train" / "good" / "002.png").write_bytes(b"")
    _fails("002.png is an empty file", read_mvtec, mvtec, "train", ["cable"])

    _mask(mvtec / "cable" / "ground_truth" / "crack" / "000_mask.png", (0, 2, 0, 2), (12, 16))
    sample = read_mvtec(mvtec, "test", ["cable"])[0]
    message = _fails("resize the mask", load_record, sample)
    assert "16x12" in message and "32x24" in message


def test_anomalous_sample_without_mask_has_unknown_mask(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    _png(root / "good" / "a.png")
    _png(root / "good" / "b.png")
    _png(root / "bad" / "c.png")
    sample = [s for s in read_folder(root, "test") if s.label == 1][0]
    assert not sample.mask_known and load_mask(sample, (24, 32)) is None


def test_meta_jsonl_reader(tmp_path: Path) -> None:
    images = tmp_path / "images"
    _png(images / "bottle" / "test" / "good" / "000.png")
    _png(images / "bottle" / "test" / "broken" / "000.png")
    _mask(images / "bottle" / "ground_truth" / "broken" / "000_mask.png", (0, 4, 0, 4))
    _png(images / "cable" / "test" / "good" / "000.png")
    lines = [
        {"filename": "bottle/test/good/000.png", "label": 0, "label_name": "good",
         "clsname": "bottle"},
        {"filename": "bottle/test/broken/000.png", "label": 1, "label_name": "defective",
         "clsname": "bottle", "maskname": "bottle/ground_truth/broken/000_mask.png"},
        {"filename": "cable/test/good/000.png", "label": 0, "label_name": "good",
         "clsname": "cable"},
    ]  # fmt: skip
    meta = tmp_path / "meta" / "test.json"
    meta.parent.mkdir()
    meta.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")

    test = read_meta(meta, images)
    assert [(s.class_name, s.label, s.defect) for s in test] == [
        ("bottle", 0, "good"),
        ("bottle", 1, "broken"),
        ("cable", 0, "good"),
    ]
    assert load_record(test[1]).mask.sum() == 16
    assert read_meta(meta, images, classes=["cable"]).class_names == ["cable"]
    assert detect_layout(meta.parent, "test") == "meta"
    assert len(open_dataset(meta.parent, "test", image_root=images)) == 3

    _fails("does not exist; pass the folder", read_meta, meta)  # wrong image root
    meta.write_text(json.dumps(lines[0]) + "\n{not json\n")
    _fails("test.json line 2 is not valid JSON", read_meta, meta, images)
    meta.write_text(json.dumps({"filename": "bottle/test/good/000.png", "label": 3}) + "\n")
    _fails("line 1: label must be 0", read_meta, meta, images)


def test_plain_folder_holds_out_good_images_for_testing(tmp_path: Path) -> None:
    root = tmp_path / "widget"
    for i in range(10):
        _png(root / "good" / f"g{i}.png")
    _png(root / "bad" / "b0.png", 20)
    _png(root / "anomalous" / "b1.png", 20)
    _mask(root / "masks" / "b0_mask.png", (0, 3, 0, 3))
    (root / "good" / "Thumbs.db").write_bytes(b"x")

    train, test = read_folder(root, "train"), read_folder(root, "test")
    assert train.class_names == test.class_names == ["widget"]
    assert not {s.path for s in train} & {s.path for s in test}
    assert len(train) == 8 and train.skipped == 1
    assert sorted(s.label for s in test) == [0, 0, 1, 1]
    masked = [s for s in test if s.mask_path is not None]
    assert [s.path.name for s in masked] == ["b0.png"]
    assert len(read_folder(root, "train", holdout=0)) == 10
    assert open_dataset(root, "train").layout == "folder"


def test_plain_folder_of_several_products_and_missing_good(tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        _png(tmp_path / "line" / name / "good" / "0.png")
        _png(tmp_path / "line" / name / "good" / "1.png")
    both = open_dataset(tmp_path / "line", "train")
    assert both.class_names == ["alpha", "beta"] and len(both) == 2
    _png(tmp_path / "nothing" / "bad" / "0.png")
    _fails("has no good/ folder", read_folder, tmp_path / "nothing")


def test_open_dataset_says_when_it_cannot_tell(tmp_path: Path) -> None:
    _fails("does not exist", open_dataset, tmp_path / "missing")
    (tmp_path / "random" / "stuff").mkdir(parents=True)
    _fails("cannot tell the dataset layout", open_dataset, tmp_path / "random")
    text = tmp_path / "file.txt"
    text.write_text("x")
    _fails("not a .json/.jsonl meta file", open_dataset, text)
