"""Held-out split, threshold rule and feature-cache key: the cheap parts of training."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from uniad_edge.data import Sample
from uniad_edge.model import build_model
from uniad_edge.presets import PRESETS
from uniad_edge.train.cache import backbone_id, cache_key, choose_mode
from uniad_edge.train.distributed import Dist
from uniad_edge.train.holdout import split_holdout
from uniad_edge.train.rng import epoch_order
from uniad_edge.train.thresholds import fit_thresholds


def _samples(counts: dict[str, int]) -> list[Sample]:
    return [Sample(Path(f"{c}/{i:03d}.png"), 0, c) for c, n in counts.items() for i in range(n)]


def test_holdout_keeps_a_few_per_class_and_never_all() -> None:
    samples = _samples({"a": 40, "b": 6, "c": 1, "d": 2})
    train, held = split_holdout(samples, 0.1, 2)
    held_by_class = [samples[i].class_name for i in held]
    assert held_by_class.count("a") == 4  # 10 %
    assert held_by_class.count("b") == 2  # the minimum
    assert held_by_class.count("c") == 0  # a single image is trained on
    assert held_by_class.count("d") == 1  # at least one image left to train on
    assert sorted(train + held) == list(range(len(samples)))
    assert split_holdout(samples, 0.0, 2)[1] == []


def test_thresholds_follow_the_rule_per_class_and_global() -> None:
    scores = [1.0, 2.0, 3.0, 10.0, 20.0]
    names = ["a", "a", "a", "b", "b"]
    found = fit_thresholds(scores, names)
    # The documented rule, pinned: 1.1 x the linearly interpolated 99th percentile.
    assert found.per_class["a"] == pytest.approx(1.1 * 2.98)  # 2 + 0.98 x (3 - 2)
    assert found.per_class["b"] == pytest.approx(1.1 * 19.9)  # 10 + 0.99 x (20 - 10)
    assert found.global_ == pytest.approx(1.1 * 19.6)  # 10 + 0.96 x (20 - 10)
    assert all(s < found.for_class(n) for s, n in zip(scores, names, strict=True))
    assert "percentile" in found.rule
    empty = fit_thresholds([], [])
    assert empty.global_ is None and empty.per_class == {} and "no held-out" in empty.rule


def test_cache_key_changes_with_data_preset_and_backbone(tmp_path: Path) -> None:
    files = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), np.full((8, 8, 3), i, np.uint8))
        files.append(Sample(path, 0, "a"))
    preset = PRESETS["mvtec-224"]
    key = cache_key(files, preset, "random:0")
    assert cache_key(files, preset, "random:0") == key
    assert cache_key(files[:2], preset, "random:0") != key  # file removed
    stat = files[0].path.stat()
    os.utime(files[0].path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    touched = cache_key(files, preset, "random:0")
    assert touched != key  # file rewritten
    assert cache_key(files, preset.replace(input_size=(256, 256)), "random:0") != touched
    assert cache_key(files, PRESETS["mvtec-512"], "random:0") != touched
    assert cache_key(files, preset, "random:1") != touched  # other random backbone
    assert cache_key(files, preset, "ab" * 32) != touched  # ImageNet weights file
    # The transformer does not change the backbone's features: same cache.
    assert cache_key(files, preset.replace(num_encoder_layers=1), "random:0") == touched


def test_auto_cache_mode_goes_to_disk_for_large_sets_and_torchrun() -> None:
    preset = PRESETS["mvtec-512"]  # 2.9 MB of float32 features per image
    assert choose_mode("auto", 100, preset, distributed=False) == "memory"
    assert choose_mode("auto", 5000, preset, distributed=False) == "disk"
    assert choose_mode("auto", 100, preset, distributed=True) == "disk"
    assert choose_mode("memory", 5000, preset, distributed=False) == "memory"


def test_epoch_order_is_a_padded_partition_reproducible_per_epoch() -> None:
    ranks = [epoch_order(7, 0, 3, Dist(r, 2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 4
    assert set(ranks[0].tolist()) | set(ranks[1].tolist()) == set(range(7))
    assert epoch_order(7, 0, 3, Dist()).tolist() == epoch_order(7, 0, 3, Dist()).tolist()
    assert epoch_order(7, 0, 3, Dist()).tolist() != epoch_order(7, 0, 4, Dist()).tolist()


def test_backbone_id_follows_the_random_weights() -> None:
    ids = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        ids.append(backbone_id(build_model(PRESETS["mvtec-224"], pretrained=False)))
    assert ids[0] == ids[1] != ids[2]
    assert ids[0].startswith("random:")
