"""Backbone features computed once per dataset, kept in memory or in a float16 memmap on disk.

The backbone is frozen, in eval mode and sees no augmentation, so its features never change
during training: computing them once replaces the official code's backbone pass on every step.
A disk cache is named by a hash of everything that determines the features (file list with
sizes and mtimes, the preset's input geometry and normalisation, the backbone weights), so
changing any of them builds a new one instead of silently reusing stale features.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..data import Sample
from ..fileio import atomic_path
from ..model import UniAD
from ..model.preprocess import Preprocess
from ..presets import Preset
from .images import iterate_images

CACHE_VERSION = 1
MEMORY_LIMIT_BYTES = 2 << 30  # `auto` keeps float32 features in memory up to 2 GiB
FEATURE_FIELDS = ("backbone", "input_size", "stages", "output_stride", "mean", "std")
PREFIX = "features-"


def backbone_id(model: UniAD) -> str:
    """The ImageNet file's sha256, or `random:` + a hash of the random-init weights themselves
    (so a different seed, init scheme or torch version never reuses stale features)."""
    info = model.backbone_info
    if info.pretrained and info.weights_sha256:
        return info.weights_sha256
    digest = hashlib.sha256()
    for name, tensor in model.backbone.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"random:{digest.hexdigest()}"


def _sample_identity(sample: Sample) -> list[object]:
    if sample.image is not None:  # in-memory datasets (CIFAR-10): hash the pixels
        return [str(sample.path), hashlib.sha256(sample.image.tobytes()).hexdigest()]
    stat = sample.path.stat()
    return [str(sample.path.resolve()), stat.st_size, stat.st_mtime_ns]


def cache_key(samples: Sequence[Sample], preset: Preset, backbone: str) -> str:
    """sha256 over (data files + sizes/mtimes, feature-relevant preset fields, backbone id)."""
    geometry = {name: getattr(preset, name) for name in FEATURE_FIELDS}
    payload = {
        "version": CACHE_VERSION,
        "files": [_sample_identity(s) for s in samples],
        "preset": {k: list(v) if isinstance(v, tuple) else v for k, v in geometry.items()},
        "backbone": backbone,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def feature_bytes(count: int, preset: Preset) -> int:
    fh, fw, channels = preset.feature_map
    return count * channels * fh * fw * 4


def choose_mode(mode: str, count: int, preset: Preset, distributed: bool) -> str:
    """`auto`: memory when float32 features fit in 2 GiB and one process trains, else disk."""
    if mode != "auto":
        return mode
    small = feature_bytes(count, preset) <= MEMORY_LIMIT_BYTES
    return "memory" if small and not distributed else "disk"


@dataclass
class FeatureCache:
    """Features [N, C, h, w] of the training-split images, in the samples' order."""

    mode: str
    key: str
    data: Tensor | np.ndarray  # float32 tensor on the device (memory) or float16 memmap (disk)
    path: Path | None = None
    reused: bool = False

    def batch(self, indices: Tensor, device: torch.device) -> Tensor:
        if isinstance(self.data, Tensor):
            return self.data[indices.to(self.data.device)]
        rows = np.asarray(self.data[indices.numpy()])
        return torch.from_numpy(rows).to(device=device, dtype=torch.float32)


@torch.no_grad()
def extract(
    model: UniAD,
    samples: Sequence[Sample],
    write: Callable[[int, Tensor], None],
    device: torch.device,
    batch_size: int,
    workers: int,
    advance: Callable[[int], None] | None = None,
) -> None:
    """Run preprocessing + frozen backbone + neck once over `samples`; `write(start, feats)`."""
    preprocess = Preprocess(model.preset.mean, model.preset.std).to(device)
    model.eval()
    for images, indices in iterate_images(samples, model.preset.input_size, batch_size, workers):
        feats = model.features(preprocess(images.to(device)))
        write(int(indices[0]), feats.float())
        if advance is not None:
            advance(len(indices))


def build_memory(
    model: UniAD, samples: Sequence[Sample], key: str, device: torch.device, **kwargs
) -> FeatureCache:
    fh, fw, channels = model.preset.feature_map
    data = torch.empty((len(samples), channels, fh, fw), device=device)

    def write(start: int, feats: Tensor) -> None:
        data[start : start + len(feats)] = feats

    extract(model, samples, write, device, **kwargs)
    return FeatureCache("memory", key, data)


def disk_path(folder: Path, key: str) -> Path:
    return folder / f"{PREFIX}{key[:24]}.npy"


def open_disk(folder: Path, key: str, count: int, preset: Preset) -> FeatureCache | None:
    """The cache file for `key` if it exists with the expected shape, else None."""
    path = disk_path(folder, key)
    if not path.is_file():
        return None
    fh, fw, channels = preset.feature_map
    data = np.load(path, mmap_mode="r")
    if data.shape != (count, channels, fh, fw) or data.dtype != np.float16:
        return None
    return FeatureCache("disk", key, data, path, reused=True)


def build_disk(
    model: UniAD,
    samples: Sequence[Sample],
    key: str,
    folder: Path,
    device: torch.device,
    prune: bool = False,
    **kwargs,
) -> FeatureCache:
    """Write the float16 memmap beside its final name and rename it only when complete.

    `prune` deletes caches of other keys in `folder` (a run's own folder, never a shared one).
    """
    path = disk_path(folder, key)
    with atomic_path(path) as tmp:
        _fill_memmap(tmp, model, samples, device, **kwargs)
    for stale in folder.glob(f"{PREFIX}*.npy") if prune else ():
        if stale != path:
            stale.unlink(missing_ok=True)
    return FeatureCache("disk", key, np.load(path, mmap_mode="r"), path)


def _fill_memmap(
    path: Path, model: UniAD, samples: Sequence[Sample], device: torch.device, **kwargs
) -> None:
    """Features into a new .npy memmap; closed on return so the file can be renamed."""
    fh, fw, channels = model.preset.feature_map
    data = np.lib.format.open_memmap(
        path, mode="w+", dtype=np.float16, shape=(len(samples), channels, fh, fw)
    )

    def write(start: int, feats: Tensor) -> None:
        data[start : start + len(feats)] = feats.half().cpu().numpy()

    extract(model, samples, write, device, **kwargs)
    data.flush()
