"""Image AUROC of `lite0-224` (EfficientNet-Lite0, ImageNet weights from the `[lite]` extra) vs
`mvtec-224` (EfficientNet-B4, random-init: its weights cannot be downloaded offline), trained
the same way (same epochs, data, seed, batch, cached features) on two datasets:

- `demo`: the demo's own synthetic set (`uniad-edge synth` with the demo's sizes);
- `textures`: procedural real-photo-like textures written here (brick, gravel, grass, with
  cracks, stains, holes and foreign bodies), whose good images vary the way real ones do.

A `lite0-224` run with a random-init backbone separates "Lite0 is a better backbone" from
"ImageNet features help". Wall time of each run (feature cache + training) is recorded.

    nice python benchmarks/lite_vs_b4.py --out /tmp/lite_vs_b4 --json lite_vs_b4.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from uniad_edge.data.synth import generate
from uniad_edge.demo.config import DemoConfig
from uniad_edge.evaluate import evaluate
from uniad_edge.train import TrainConfig, train

RUNS = "mvtec-224:random,lite0-224:imagenet,lite0-224:random"
DEFECTS = ("crack", "stain", "hole", "foreign")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=DemoConfig.epochs)
    parser.add_argument("--train-per-class", type=int, default=DemoConfig.train_per_class)
    parser.add_argument("--test-per-class", type=int, default=DemoConfig.test_per_class)
    parser.add_argument("--classes", type=int, default=DemoConfig.classes, help="demo set only")
    parser.add_argument("--datasets", default="textures,demo")
    parser.add_argument("--runs", default=RUNS, help="PRESET:imagenet|random, comma-separated")
    parser.add_argument("--json", type=Path)
    return parser.parse_args()


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def _brick(rng: np.random.Generator, size: int) -> np.ndarray:
    mortar = np.array([150, 160, 165], np.float32) * (1 + 0.1 * _noise(rng, size, 32))[..., None]
    image = mortar.copy()
    bh, bw = int(rng.integers(26, 34)), int(rng.integers(56, 70))
    oy, ox = rng.integers(0, bh), rng.integers(0, bw)
    for row, y in enumerate(range(-bh + oy, size, bh)):
        shift = (bw // 2) * (row % 2)
        for x in range(-bw + ox - shift, size, bw):
            colour = np.array([55, 75, 150], np.float32) * rng.uniform(0.75, 1.15, 3)
            y0, x0 = max(y + 2, 0), max(x + 2, 0)
            y1, x1 = min(y + bh - 2, size), min(x + bw - 2, size)
            if y1 > y0 and x1 > x0:
                image[y0:y1, x0:x1] = colour
    grain = 1 + 0.12 * _noise(rng, size, 64) + 0.06 * rng.standard_normal((size, size))
    return image * grain.astype(np.float32)[..., None]


def _gravel(rng: np.random.Generator, size: int) -> np.ndarray:
    image = np.full((size, size, 3), 45, np.float32)
    for _ in range(int(size * size / 180)):
        cx, cy = rng.integers(0, size, 2)
        axes = (int(rng.integers(5, 14)), int(rng.integers(4, 11)))
        tone = rng.uniform(90, 200) * np.array([1.0, 1.02, 1.05]) * rng.uniform(0.9, 1.1, 3)
        cv2.ellipse(image, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0, 360, tone, -1)
    shade = 1 + 0.15 * _noise(rng, size, 6) + 0.08 * rng.standard_normal((size, size))
    return cv2.GaussianBlur(image, (3, 3), 0) * shade.astype(np.float32)[..., None]


def _grass(rng: np.random.Generator, size: int) -> np.ndarray:
    image = np.zeros((size, size, 3), np.float32) + np.array([20, 60, 30], np.float32)
    lean = rng.uniform(-0.4, 0.4)
    for _ in range(size * 6):
        x, y = rng.uniform(0, size, 2)
        length, angle = rng.uniform(8, 24), -np.pi / 2 + lean + rng.normal(0, 0.25)
        tip = (int(x + length * np.cos(angle)), int(y + length * np.sin(angle)))
        colour = np.array([30, 120, 60], np.float32) * rng.uniform(0.6, 1.5, 3)
        cv2.line(image, (int(x), int(y)), tip, colour.tolist(), 1, cv2.LINE_AA)
    return image * (1 + 0.2 * _noise(rng, size, 5)).astype(np.float32)[..., None]


TEXTURES = {"brick": _brick, "gravel": _gravel, "grass": _grass}


def _ellipse(
    mask: np.ndarray,
    rng: np.random.Generator,
    centre: tuple[int, int],
    long_axis: tuple[int, int],
    short_axis: tuple[int, int],
) -> None:
    """Fill an ellipse of random half-axes (ranges) and angle into `mask`."""
    axes = (int(rng.integers(*long_axis)), int(rng.integers(*short_axis)))
    cv2.ellipse(mask, centre, axes, rng.uniform(0, 180), 0, 360, 255, -1)


def _defect(kind: str, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Paint one defect into `image` in place; returns its mask (uint8 0/255)."""
    size = image.shape[0]
    mask = np.zeros((size, size), np.uint8)
    cx, cy = (int(v) for v in rng.integers(size // 5, 4 * size // 5, 2))
    if kind == "crack":
        points = [(cx, cy)]
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(6, 12))):
            angle += rng.normal(0, 0.5)
            step = rng.uniform(4, 9)
            points.append(
                (
                    int(points[-1][0] + step * np.cos(angle)),
                    int(points[-1][1] + step * np.sin(angle)),
                )
            )
        cv2.polylines(mask, [np.array(points, np.int32)], False, 255, int(rng.integers(2, 4)))
        image[mask > 0] *= 0.25
    elif kind == "stain":
        _ellipse(mask, rng, (cx, cy), (8, 18), (6, 14))
        alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255, (9, 9), 0)[..., None] * 0.6
        tint = np.array([40, 70, 90], np.float32)
        image[:] = image * (1 - alpha) + tint * alpha
    elif kind == "hole":
        cv2.circle(mask, (cx, cy), int(rng.integers(5, 11)), 255, -1)
        image[mask > 0] = 12
    else:  # a foreign body: a small piece of blue plastic
        _ellipse(mask, rng, (cx, cy), (4, 9), (3, 7))
        image[mask > 0] = np.array([200, 120, 40], np.float32) * rng.uniform(0.85, 1.1)
    return mask


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.clip(image, 0, 255).astype(np.uint8))


def textures(root: Path, train_per_class: int, test_per_class: int, size: int = 256) -> Path:
    """MVTec layout: CLASS/train/good, CLASS/test/{good,DEFECT}, CLASS/ground_truth/DEFECT."""
    rng = np.random.default_rng(0)
    for name, render in TEXTURES.items():
        for i in range(train_per_class):
            _write(root / name / "train" / "good" / f"{i:03d}.png", render(rng, size))
        for i in range(test_per_class):
            image = render(rng, size)
            if i % 2 == 0:
                _write(root / name / "test" / "good" / f"{i:03d}.png", image)
                continue
            kind = DEFECTS[(i // 2) % len(DEFECTS)]
            mask = _defect(kind, image, rng)
            _write(root / name / "test" / kind / f"{i:03d}.png", image)
            _write(root / name / "ground_truth" / kind / f"{i:03d}_mask.png", mask)
    return root


def run(data: Path, out: Path, preset: str, pretrained: bool, epochs: int) -> dict:
    start = time.perf_counter()
    result = train(
        TrainConfig(
            data=data,
            out=out,
            preset=preset,
            epochs=epochs,
            save_every=0,
            seed=0,
            cache="memory",
            random_backbone=not pretrained,
        )
    )
    seconds = time.perf_counter() - start
    report = evaluate(result.best, data).to_dict()
    return {
        "preset": preset,
        "backbone": "ImageNet" if pretrained else "random-init",
        "epochs": epochs,
        "train_s": round(seconds, 1),
        "s_per_epoch": round(result.seconds_per_epoch, 2),
        "image_auroc": report["image_auroc"],
        "pixel_auroc_mean": report["pixel_auroc"]["mean"],
    }


def main() -> None:
    args = parse()
    sets = {}
    for name in args.datasets.split(","):
        root = args.out / "data" / name
        if name == "demo":
            generate(
                root,
                classes=args.classes,
                train_per_class=args.train_per_class,
                test_per_class=args.test_per_class,
                size=DemoConfig.size,
                seed=0,
                force=True,
            )
        else:
            textures(root, args.train_per_class, args.test_per_class)
        sets[name] = root
    rows = []
    for name, root in sets.items():
        for preset, init in (run.split(":") for run in args.runs.split(",")):
            pretrained = init == "imagenet"
            tag = f"{name}-{preset}-{'imagenet' if pretrained else 'random'}"
            row = {
                "dataset": name,
                **run(root, args.out / "runs" / tag, preset, pretrained, args.epochs),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
