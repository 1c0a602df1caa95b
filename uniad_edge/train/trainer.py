"""The training loop: cached features, feature jitter, MSE, AdamW, StepLR, clipping, DDP.

Checkpoints: `last.pth` after every epoch (with optimizer, scheduler, epoch and RNG state for
`--resume`), `epoch_NNNN.pth` every `save_every` epochs (also resumable), and `best.pth`, the
epoch with the lowest held-out reconstruction loss (MSE without jitter on the held-out normal
images; the training loss when nothing is held out). Every checkpoint carries thresholds fitted
on the held-out images for its own weights.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..data import Sample, SampleSet, open_dataset
from ..errors import UniadError
from ..model import UniAD, build_model, load_checkpoint, save_checkpoint
from . import cache as feature_cache
from . import distributed, rng
from .config import TrainConfig
from .holdout import split_holdout
from .thresholds import fit_thresholds

RANDOM_BACKBONE_WARNING = (
    "random-init backbone: features are not ImageNet features, scores mean little "
    "(tests, benchmarks, offline demo only)"
)


@dataclass
class TrainResult:
    """Where the checkpoints are and how training went."""

    out: Path
    last: Path
    best: Path
    epochs: int
    final_loss: float
    best_metric: float
    best_epoch: int
    thresholds: dict[str, Any]
    cache_mode: str
    seconds_per_epoch: float


@dataclass
class _Data:
    samples: list[Sample]
    train: list[int]
    held: list[int]
    summary: dict[str, Any]
    warnings: list[str]


def _load_data(config: TrainConfig) -> _Data:
    dataset: SampleSet = open_dataset(config.data, "train", config.classes)
    samples = [s for s in dataset.samples if s.label == 0]
    if not samples:
        raise UniadError(f"{config.data}: no good (normal) training images; add train/good images")
    train, held = split_holdout(samples, config.holdout, config.min_holdout)
    per_class: dict[str, dict[str, int]] = {}
    held_set = set(held)
    for index, sample in enumerate(samples):
        row = per_class.setdefault(sample.class_name, {"train": 0, "holdout": 0})
        row["holdout" if index in held_set else "train"] += 1
    summary = {
        "layout": dataset.layout,
        "warnings": dataset.warnings,
        "root": str(dataset.root),
        "train_images": len(train),
        "holdout_images": len(held),
        "skipped_files": dataset.skipped,
        "per_class": per_class,
    }
    return _Data(samples, train, held, summary, dataset.warnings)


def _build(config: TrainConfig) -> UniAD:
    preset = config.resolved_preset()
    torch.manual_seed(config.seed)  # a random-init backbone is then reproducible from the seed
    model = build_model(preset, config.backbone_weights, pretrained=not config.random_backbone)
    if config.init != "xavier_uniform":
        model.reconstruction.init_weights(config.init)
    return model


def _resume_differences(config: TrainConfig, ckpt: Any, model: UniAD, data: _Data) -> list[str]:
    """What this run would change about the run it resumes: preset, class set, data root."""
    stored = ckpt.meta.get("training_config") or {}
    found = []
    if ckpt.preset.to_dict() != model.preset.to_dict():
        found.append(f"preset {ckpt.preset.name} -> {model.preset.name}")
    classes = sorted({s.class_name for s in data.samples})
    if ckpt.class_names and ckpt.class_names != classes:
        found.append(f"classes {','.join(ckpt.class_names)} -> {','.join(classes)}")
    root = stored.get("data")
    if root is not None and Path(root).resolve() != config.data.resolve():
        found.append(f"data {root} -> {config.data}")
    return found


def _resume_state(
    config: TrainConfig, model: UniAD, data: _Data
) -> tuple[UniAD, dict[str, Any] | None]:
    """The last checkpoint's model and training state, refused when this run's preset, class
    set or data root differ (the checkpoint would claim other classes and "best" would compare
    different held-out sets)."""
    if not config.resume:
        return model, None
    last = config.out / "last.pth"
    if not last.is_file():
        raise UniadError(f"--resume: {last} does not exist; train without --resume first")
    ckpt = load_checkpoint(last)
    if ckpt.training is None:
        raise UniadError(f"--resume: {last} holds no training state; it cannot be resumed")
    differences = _resume_differences(config, ckpt, model, data)
    if differences:
        raise UniadError(
            f"--resume: this run differs from {last}: {'; '.join(differences)}; resume with the "
            "same --data, --classes and --preset, or train into a new --out"
        )
    return ckpt.model, ckpt.training


def _cache(
    config: TrainConfig,
    model: UniAD,
    data: _Data,
    info: distributed.Dist,
    device: torch.device,
    progress: Progress | None,
) -> feature_cache.FeatureCache:
    """Features of all training-split images (trained and held out), built once per key."""
    key = feature_cache.cache_key(data.samples, model.preset, feature_cache.backbone_id(model))
    mode = feature_cache.choose_mode(config.cache, len(data.samples), model.preset, info.enabled)
    folder = config.cache_dir or config.out / "cache"
    task = None
    if progress is not None:
        task = progress.add_task("backbone features", total=len(data.samples), loss="", ips="")
    kwargs = {
        "batch_size": config.batch_size,
        "workers": config.workers,
        "advance": None if task is None else lambda n: progress.update(task, advance=n),
    }
    if mode == "memory":
        built = feature_cache.build_memory(model, data.samples, key, device, **kwargs)
    else:
        if info.main:
            cached = feature_cache.open_disk(folder, key, len(data.samples), model.preset)
            if cached is None:
                feature_cache.build_disk(
                    model, data.samples, key, folder, device, config.cache_dir is None, **kwargs
                )
        distributed.barrier(info)
        built = feature_cache.open_disk(folder, key, len(data.samples), model.preset)
        if built is None:
            raise UniadError(f"feature cache in {folder} vanished; delete the folder and retry")
    if task is not None:
        progress.remove_task(task)
    return built


def _held_out(
    model: UniAD, cache: feature_cache.FeatureCache, data: _Data, batch: int, device: torch.device
) -> tuple[float, list[float]]:
    """Reconstruction MSE (no jitter) and image scores of the held-out normal images."""
    if not data.held:
        return float("nan"), []
    model.reconstruction.eval()
    losses, scores = [], []
    with torch.no_grad():
        for start in range(0, len(data.held), batch):
            index = torch.tensor(data.held[start : start + batch])
            feats = cache.batch(index, device)
            rec = model.reconstruction(feats)
            losses.append(F.mse_loss(rec, feats, reduction="sum").item() / rec[0].numel())
            scores.extend(model.distance_head(feats, rec)[1].tolist())
    return sum(losses) / len(data.held), scores


def _meta(
    config: TrainConfig, model: UniAD, data: _Data, epoch: int, scores: list[float], extra: dict
) -> dict[str, Any]:
    classes = sorted({s.class_name for s in data.samples})
    held_classes = [data.samples[i].class_name for i in data.held]
    return {
        "class_names": classes,
        "thresholds": fit_thresholds(scores, held_classes).to_dict(),
        "epoch": epoch,
        "training_config": config.to_dict(),
        "dataset": data.summary,
        "backbone_pretrained": model.backbone.pretrained,
        "backbone_warning": None if model.backbone.pretrained else RANDOM_BACKBONE_WARNING,
        **extra,
    }


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[loss]}"),
        TextColumn("{task.fields[ips]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def train_step(
    recon: nn.Module, optimizer: torch.optim.Optimizer, feats: Tensor, clip: float
) -> float:
    """One optimizer step: jitter (inside `recon` in train mode), MSE to the clean features."""
    rec = recon(feats)
    loss = F.mse_loss(rec, feats)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:
        nn.utils.clip_grad_norm_(recon.parameters(), clip)
    optimizer.step()
    return float(loss.item())


def train(
    config: TrainConfig, console: Console | None = None, show_progress: bool = True
) -> TrainResult:
    """Train one unified model on every class of `config.data`; under torchrun, one rank each.

    On Ctrl-C the objects alive now are frozen out of the garbage collector: the interpreter's
    exit would otherwise walk torch's whole object graph (seconds on a quiet machine, over a
    minute on a loaded one) before the process ends; the checkpoints are already on disk."""
    info, device = distributed.setup(config.device)
    try:
        return _train(config, info, device, console or Console(), show_progress)
    except KeyboardInterrupt:
        gc.freeze()
        raise
    finally:
        distributed.teardown()


def _train(
    config: TrainConfig,
    info: distributed.Dist,
    device: torch.device,
    console: Console,
    show_progress: bool,
) -> TrainResult:
    say = console.print if info.main else (lambda *a, **k: None)
    data = _load_data(config)
    model, state = _resume_state(config, _build(config), data)
    if not model.backbone.pretrained:
        say(f"[bold yellow]WARNING: {RANDOM_BACKBONE_WARNING}[/]")
    for warning in data.warnings:
        say(f"[yellow]warning:[/] {escape(warning)}")
    say(
        escape(
            f"{data.summary['layout']} data: {len(data.train)} training + {len(data.held)} "
            f"held-out good images in {len(data.summary['per_class'])} "
            f"class{'' if len(data.summary['per_class']) == 1 else 'es'}; "
            f"{info.world} process(es) on {device}"
        )
    )
    model.to(device)
    config.out.mkdir(parents=True, exist_ok=True)
    progress = _progress(console) if show_progress and info.main else None
    with progress or contextlib.nullcontext():
        cache = _cache(config, model, data, info, device, progress)
        say(
            escape(
                f"feature cache: {cache.mode}"
                + (f" ({'reused' if cache.reused else 'built'} {cache.path})" if cache.path else "")
            )
        )
        return _loop(config, info, device, model, state, data, cache, progress, say)


def _loop(
    config: TrainConfig,
    info: distributed.Dist,
    device: torch.device,
    model: UniAD,
    state: dict[str, Any] | None,
    data: _Data,
    cache: feature_cache.FeatureCache,
    progress: Progress | None,
    say: Callable[..., None],
) -> TrainResult:
    recon: nn.Module = model.reconstruction
    if info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        recon = DistributedDataParallel(model.reconstruction, device_ids=ids)
    optimizer = torch.optim.AdamW(
        model.reconstruction.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma)
    start, best, best_epoch = 0, float("inf"), 0
    rng.seed_process(config.seed, info)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = int(state["epoch"])
        best, best_epoch = float(state["best_metric"]), int(state["best_epoch"])
        if not rng.restore(state["rng"], info, device):
            say("[yellow]resume: world size changed; random streams reseeded[/]")
        say(escape(f"resumed {config.out / 'last.pth'} after epoch {start}"))
    train_index = torch.tensor(data.train)
    task = None
    if progress is not None:
        task = progress.add_task("training", total=config.epochs, completed=start, loss="", ips="")
    last, best_path = config.out / "last.pth", config.out / "best.pth"
    loss, seconds = float("nan"), []
    thresholds: dict[str, Any] = {}
    for epoch in range(start, config.epochs):
        began = time.perf_counter()
        recon.train()
        total, seen = 0.0, 0
        order = train_index[rng.epoch_order(len(data.train), config.seed, epoch, info)]
        for first in range(0, len(order), config.batch_size):
            feats = cache.batch(order[first : first + config.batch_size], device)
            total += train_step(recon, optimizer, feats, config.clip) * len(feats)
            seen += len(feats)
            if task is not None:
                rate = seen * info.world / (time.perf_counter() - began)
                progress.update(task, loss=f"loss {total / seen:.4f}", ips=f"{rate:.0f} img/s")
        scheduler.step()
        loss = distributed.mean_over_ranks(total / seen, info, device)
        rng_state = rng.capture(info, device)
        seconds.append(time.perf_counter() - began)
        if task is not None:
            progress.update(task, advance=1, description=f"epoch {epoch + 1}/{config.epochs}")
        if not info.main:
            continue
        held_loss, scores = _held_out(model, cache, data, config.batch_size, device)
        metric = loss if not data.held else held_loss
        if metric < best:
            best, best_epoch = metric, epoch + 1
            extra = {"train_loss": loss, "holdout_loss": held_loss, "best_metric": best}
            save_checkpoint(best_path, model, _meta(config, model, data, epoch + 1, scores, extra))
        extra = {"train_loss": loss, "holdout_loss": held_loss, "best_metric": best}
        meta = _meta(config, model, data, epoch + 1, scores, extra)
        thresholds = meta["thresholds"]
        training = {
            "epoch": epoch + 1,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng_state,
            "best_metric": best,
            "best_epoch": best_epoch,
            "world_size": info.world,
        }
        save_checkpoint(last, model, meta, training)
        if config.save_every and (epoch + 1) % config.save_every == 0:
            save_checkpoint(config.out / f"epoch_{epoch + 1:04d}.pth", model, meta, training)
    distributed.barrier(info)
    if info.main and start < config.epochs:
        say(
            escape(
                f"done: loss {loss:.5f}, best epoch {best_epoch} (metric {best:.5f}); "
                f"{sum(seconds) / len(seconds):.2f} s/epoch; checkpoints in {config.out}"
            )
        )
    return TrainResult(
        out=config.out,
        last=last,
        best=best_path,
        epochs=config.epochs,
        final_loss=loss,
        best_metric=best,
        best_epoch=best_epoch,
        thresholds=thresholds,
        cache_mode=cache.mode,
        seconds_per_epoch=sum(seconds) / len(seconds) if seconds else float("nan"),
    )
