"""Seconds per training epoch: cached backbone features vs the backbone on every step.

The official UniAD code decodes, resizes and runs the frozen EfficientNet-B4 on every step, all
32 blocks and the head conv although it reads only the taps; uniad-edge runs the backbone once,
trimmed after the last tap, and trains the reconstruction on cached features. Three paths train
the same model (same preset, data, batch size, optimizer step) on a synthetic dataset generated
to a temporary folder, in one process: cached features, the trimmed backbone every step, and
the official full backbone every step. The script prints the times and the ratios.

    python benchmarks/train_cached_vs_backbone.py --preset mvtec-224 --epochs 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from efficientnet_pytorch import EfficientNet

from uniad_edge.data import open_dataset
from uniad_edge.data.synth import generate
from uniad_edge.model import build_model
from uniad_edge.model.backbone import resize_concat
from uniad_edge.model.preprocess import Preprocess
from uniad_edge.presets import get_preset
from uniad_edge.train.cache import build_memory
from uniad_edge.train.images import iterate_images
from uniad_edge.train.trainer import train_step


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mvtec-224")
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--train-per-class", type=int, default=16)
    parser.add_argument("--size", type=int, default=256, help="synthetic image side (px)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per path")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return parser.parse_args()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class OfficialBackbone(torch.nn.Module):
    """The official feature path: every block and the head conv run, the taps are read off."""

    def __init__(self, taps: tuple[int, ...]) -> None:
        super().__init__()
        self.net = EfficientNet.from_name("efficientnet-b4").eval()
        self.taps = taps

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        found: list[torch.Tensor] = []
        hooks = [
            self.net._blocks[i].register_forward_hook(lambda m, a, out: found.append(out))
            for i in self.taps
        ]
        try:
            self.net.extract_features(images)
        finally:
            for hook in hooks:
                hook.remove()
        return found


def main() -> None:
    args = parse()
    device = torch.device(args.device)
    preset = get_preset(args.preset)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synth"
        generate(root, args.classes, args.train_per_class, 2, args.size, seed=0)
        samples = open_dataset(root, "train").samples
        torch.manual_seed(0)
        model = build_model(preset, pretrained=False).to(device)
        preprocess = Preprocess(preset.mean, preset.std).to(device)
        optimizer = torch.optim.AdamW(model.reconstruction.parameters(), lr=1e-4)
        loader_args = (samples, preset.input_size, args.batch_size, args.workers)

        began = time.perf_counter()
        cache = build_memory(
            model, samples, "bench", device, batch_size=args.batch_size, workers=args.workers
        )
        sync(device)
        cache_seconds = time.perf_counter() - began

        def cached_epoch() -> None:
            model.reconstruction.train()
            order = torch.randperm(len(samples))
            for first in range(0, len(order), args.batch_size):
                feats = cache.batch(order[first : first + args.batch_size], device)
                train_step(model.reconstruction, optimizer, feats, 0.1)

        official = OfficialBackbone(preset.taps).to(device)

        def backbone_epoch(backbone: torch.nn.Module) -> None:
            model.reconstruction.train()
            for images, _ in iterate_images(*loader_args):
                with torch.no_grad():
                    taps = backbone(preprocess(images.to(device)))
                    feats = resize_concat(taps, preset.feature_size)
                train_step(model.reconstruction, optimizer, feats, 0.1)

        timings = {}
        for name, epoch in (
            ("cached features", cached_epoch),
            ("trimmed backbone every step", lambda: backbone_epoch(model.backbone)),
            ("official backbone every step", lambda: backbone_epoch(official)),
        ):
            epoch()  # warm-up: allocator, kernels, oneDNN primitives
            sync(device)
            began = time.perf_counter()
            for _ in range(args.epochs):
                epoch()
            sync(device)
            timings[name] = (time.perf_counter() - began) / args.epochs

    cached = timings["cached features"]
    print(
        f"{preset.name}, {len(samples)} images of {args.size}px, batch {args.batch_size}, "
        f"{args.device} ({torch.get_num_threads()} threads), torch {torch.__version__}"
    )
    print(f"one-off feature cache: {cache_seconds:.2f} s")
    for name, seconds in timings.items():
        print(f"{name:>29}: {seconds:.2f} s/epoch ({len(samples) / seconds:.1f} img/s)")
    for name in ("trimmed backbone every step", "official backbone every step"):
        print(f"speed-up per epoch vs {name}: {timings[name] / cached:.2f}x")
    saved = timings["official backbone every step"] - cached
    if saved > 0:
        print(f"cache pays for itself after {cache_seconds / saved:.1f} epochs")


if __name__ == "__main__":
    main()
