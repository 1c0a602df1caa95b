"""A built-in synthetic MVTec-style dataset, so the whole pipeline runs with no download.

Every image is rendered from three independent random streams (scene, defect, lighting), so a
defective image and its good twin differ only inside the defect mask. Good images vary in
texture phase, pose and lighting far more than a small defect moves any global statistic, so
only a detector that looks locally can separate them, as on real data.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from ..errors import UniadError

MARKER = "uniad_synth.json"
FORMAT_VERSION = 1
DEFECT_KINDS = ("scratch", "spot", "missing", "contamination", "color")


@dataclass
class Scene:
    """A rendered good image (float BGR 0-255) plus what defects need to know about it."""

    image: np.ndarray
    backing: np.ndarray  # what shows through a missing piece
    surface: np.ndarray  # bool: where surface defects may go (the object, or the whole texture)
    body: np.ndarray  # bool: the whole object (pieces can be missing from its edge)


# ---- shared rendering helpers ---------------------------------------------------------------


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    ys.flags.writeable = xs.flags.writeable = False
    return ys, xs


def _frame(size: int, cx: float, cy: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (along, across) of every pixel in a frame centred at (cx, cy), rotated."""
    ys, xs = _grid(size)
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    dx, dy = xs - np.float32(cx), ys - np.float32(cy)
    return dx * c + dy * s, dy * c - dx * s


def _noise(
    rng: np.random.Generator, size: int, cells: int, cells_x: int | None = None
) -> np.ndarray:
    """Smooth unit-variance noise: random values on a coarse grid, cubic-interpolated."""
    coarse = rng.standard_normal((cells, cells_x or cells)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def _colour(rng: np.random.Generator, bgr: Sequence[float], spread: float = 0.04) -> np.ndarray:
    return np.asarray(bgr, np.float32) * (1 + rng.normal(0, spread, 3)).astype(np.float32)


def _backdrop(rng: np.random.Generator, size: int, bgr: Sequence[float]) -> np.ndarray:
    """A matte surface for objects to lie on: base colour, soft blotches and fine grain."""
    shade = 1 + 0.06 * _noise(rng, size, 4) + 0.025 * _noise(rng, size, 48)
    return _colour(rng, bgr) * shade[..., None]


def _texture_scene(image: np.ndarray, backing_bgr: Sequence[float]) -> Scene:
    size = image.shape[0]
    everywhere = np.ones((size, size), bool)
    backing = np.broadcast_to(np.asarray(backing_bgr, np.float32), image.shape)
    return Scene(image, backing, everywhere, everywhere)


def _object_scene(
    background: np.ndarray, colour: np.ndarray, alpha: np.ndarray, shift: int
) -> Scene:
    """Composite an object (per-pixel colour, soft coverage) with a soft drop shadow."""
    shadow = cv2.GaussianBlur(np.roll(alpha, (shift, shift), (0, 1)), (0, 0), shift)
    ground = background * (1 - 0.4 * shadow)[..., None]
    a = alpha[..., None]
    image = ground * (1 - a) + colour * a
    body = alpha > 0.5
    surface = cv2.erode((alpha > 0.99).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return Scene(image, ground, surface, body)


# ---- the classes ----------------------------------------------------------------------------


def _fabric(rng: np.random.Generator, size: int) -> Scene:
    """Plain weave: warp and weft threads alternating over and under, with slubs."""
    period = size / rng.uniform(20, 24)
    u, v = _frame(size, *rng.uniform(0, size, 2), np.deg2rad(rng.uniform(-4, 4)))
    u, v = u / np.float32(period), v / np.float32(period)
    fu, fv = u - np.floor(u), v - np.floor(v)
    warp_top = (np.floor(u) + np.floor(v)) % 2 == 0
    across_u, across_v = np.sin(np.pi * fu) ** 0.6, np.sin(np.pi * fv) ** 0.6
    lift = np.where(warp_top, across_u * (0.8 + 0.2 * across_v), across_v * (0.8 + 0.2 * across_u))
    lift = lift + 0.06 * _noise(rng, size, 6) + 0.04 * _noise(rng, size, size // 2)
    warp, weft = _colour(rng, (140, 95, 55)), _colour(rng, (175, 160, 150))
    colour = np.where(warp_top[..., None], warp, weft)
    return _texture_scene((0.35 + 0.6 * lift)[..., None] * colour, (25, 22, 20))


def _wood(rng: np.random.Generator, size: int) -> Scene:
    """Growth rings bent by smooth noise, with fibres stretched along the grain."""
    _, v = _frame(size, size / 2, size / 2, np.deg2rad(rng.uniform(-6, 6)))
    bend = size * (0.05 * _noise(rng, size, 3) + 0.012 * _noise(rng, size, 9))
    t = (v + bend) * np.float32(rng.uniform(9, 13) / size) + np.float32(rng.uniform(0, 1))
    rings = (0.5 + 0.5 * np.sin(2 * np.pi * t)) ** 2.5
    fibre = _noise(rng, size, size, max(size // 24, 2))
    tone = np.clip(0.75 - 0.45 * rings + 0.05 * fibre + 0.05 * _noise(rng, size, 4), 0, 1)
    dark, light = _colour(rng, (45, 80, 125)), _colour(rng, (125, 175, 220))
    return _texture_scene(dark + (light - dark) * tone[..., None], (20, 25, 30))


def _tile(rng: np.random.Generator, size: int) -> Scene:
    """Glazed square tiles, each its own shade, separated by grout lines."""
    period = size / rng.uniform(3.2, 3.8)
    u, v = _frame(size, *rng.uniform(0, size, 2), np.deg2rad(rng.uniform(-2, 2)))
    u, v = u / np.float32(period), v / np.float32(period)
    fu, fv = u - np.floor(u), v - np.floor(v)
    edge = np.minimum(np.minimum(fu, 1 - fu), np.minimum(fv, 1 - fv)) * np.float32(period)
    shades = (1 + rng.normal(0, 0.05, (16, 16))).astype(np.float32)
    shade = shades[np.floor(u).astype(int) % 16, np.floor(v).astype(int) % 16]
    speckle = 1 + 0.03 * _noise(rng, size, size // 3) + 0.03 * _noise(rng, size, 5)
    bevel = np.clip((edge - 2) / 4, 0, 1) * 0.15 + 0.85
    glaze = _colour(rng, (190, 185, 150))[None, None] * (shade * speckle * bevel)[..., None]
    grout = _colour(rng, (120, 125, 128)) * (1 + 0.08 * _noise(rng, size, size // 4))[..., None]
    weight = np.clip(edge - 2, 0, 1)[..., None]
    return _texture_scene(grout * (1 - weight) + glaze * weight, (45, 50, 55))


def _pill(rng: np.random.Generator, size: int) -> Scene:
    """A two-colour capsule lying on a mat, slightly shifted and turned."""
    cx, cy = size / 2 + rng.normal(0, size * 0.03, 2)
    along, across = _frame(size, cx, cy, np.deg2rad(rng.uniform(-12, 12)))
    half, radius = size * rng.uniform(0.2, 0.23), size * rng.uniform(0.12, 0.135)
    dist = np.hypot(np.maximum(np.abs(along) - np.float32(half), 0), across)
    alpha = np.clip(np.float32(radius) - dist + 0.5, 0, 1)
    height = np.sqrt(np.clip(1 - (dist / np.float32(radius)) ** 2, 0, 1))
    gloss = np.exp(-(((across + 0.4 * radius) / (0.12 * radius)) ** 2)) * height
    shell = np.where(
        (along < 0)[..., None], _colour(rng, (215, 220, 225)), _colour(rng, (50, 90, 200))
    )
    seam = 1 - 0.35 * np.exp(-((along / 1.5) ** 2))
    colour = shell * ((0.55 + 0.45 * height) * seam)[..., None] + 60 * gloss[..., None]
    background = _backdrop(rng, size, (70, 80, 75))
    return _object_scene(background, colour, alpha, max(size // 64, 2))


def _nut(rng: np.random.Generator, size: int) -> Scene:
    """A hexagon nut seen from above: chamfered faces, brushed top, threaded hole."""
    cx, cy = size / 2 + rng.normal(0, size * 0.03, 2)
    turn = rng.uniform(0, np.pi / 3)
    along, across = _frame(size, cx, cy, turn)
    apothem = size * rng.uniform(0.27, 0.3)
    faces = np.stack(
        [along * np.cos(k * np.pi / 3) + across * np.sin(k * np.pi / 3) for k in range(6)]
    )
    hex_dist = faces.max(0)
    radius = np.hypot(along, across)
    outer = np.maximum(hex_dist - np.float32(apothem), radius - np.float32(apothem * 1.1))
    hole = np.float32(apothem * rng.uniform(0.42, 0.48))
    alpha = np.clip(0.5 - outer, 0, 1) * np.clip(radius - hole + 0.5, 0, 1)
    facet = (0.75 + 0.25 * rng.random(6).astype(np.float32))[faces.argmax(0)]
    chamfer = np.where(outer > -apothem * 0.12, facet, 1.0)
    brushed = 0.92 + 0.05 * np.sin(radius * 0.8) + 0.03 * _noise(rng, size, size // 4)
    thread = np.where(radius < hole * 1.15, 0.6 + 0.2 * np.sin(radius * 2.2), 1.0)
    colour = _colour(rng, (150, 152, 158))[None, None] * (chamfer * brushed * thread)[..., None]
    background = _backdrop(rng, size, (70, 55, 45))
    return _object_scene(background, colour, alpha, max(size // 48, 2))


def _screw(rng: np.random.Generator, size: int) -> Scene:
    """A machine screw at any angle: head, threaded shaft, pointed tip."""
    cx, cy = size / 2 + rng.normal(0, size * 0.04, 2)
    along, across = _frame(size, cx, cy, rng.uniform(0, 2 * np.pi))
    length, width = size * rng.uniform(0.3, 0.33), size * 0.05
    taper = np.clip((np.float32(length) - along) / np.float32(length * 0.3), 0, 1)
    shaft = np.maximum(np.abs(across) - np.float32(width) * taper, -along - np.float32(length))
    head_at = -length * 0.95
    head = np.maximum(
        np.abs(along - np.float32(head_at)) - size * 0.04, np.abs(across) - size * 0.09
    )
    shape = np.minimum(np.maximum(shaft, along - np.float32(length)), head)
    alpha = np.clip(0.5 - shape, 0, 1)
    roundness = np.sqrt(np.clip(1 - (across / np.float32(size * 0.09)) ** 2, 0, 1))
    pitch = np.float32(size * rng.uniform(0.028, 0.034))
    threads = np.where(
        along > head_at + size * 0.12, 0.7 + 0.3 * np.sin(along * 2 * np.pi / pitch), 1
    )
    colour = (
        _colour(rng, (95, 95, 100))[None, None] * ((0.5 + 0.6 * roundness) * threads)[..., None]
    )
    background = _backdrop(rng, size, (185, 188, 190))
    return _object_scene(background, colour, alpha, max(size // 64, 2))


@dataclass(frozen=True)
class SynthClass:
    name: str
    render: Callable[[np.random.Generator, int], Scene]
    defects: tuple[str, ...]


CLASSES: tuple[SynthClass, ...] = (
    SynthClass("fabric", _fabric, ("spot", "missing", "contamination", "color")),
    SynthClass("wood", _wood, ("scratch", "spot", "missing", "color")),
    SynthClass("pill", _pill, ("scratch", "spot", "missing", "contamination", "color")),
    SynthClass("tile", _tile, ("scratch", "spot", "missing", "contamination")),
    SynthClass("nut", _nut, ("scratch", "missing", "contamination", "color")),
    SynthClass("screw", _screw, ("scratch", "spot", "missing", "contamination")),
)
CLASS_NAMES = tuple(c.name for c in CLASSES)


# ---- defects --------------------------------------------------------------------------------


def _point(rng: np.random.Generator, allowed: np.ndarray, margin: int) -> tuple[int, int]:
    """A random (x, y) inside `allowed`, at least `margin` pixels from the image border."""
    inner = np.zeros_like(allowed)
    inner[margin:-margin, margin:-margin] = allowed[margin:-margin, margin:-margin]
    index = rng.choice(np.flatnonzero(inner)) if inner.any() else rng.choice(allowed.size)
    y, x = divmod(int(index), allowed.shape[1])
    return x, y


def _blob(
    rng: np.random.Generator, size: int, centre: tuple[float, float], radius: float
) -> np.ndarray:
    """Filled irregular blob: a polygon whose radius wobbles smoothly around the centre."""
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    wobble = np.convolve(np.tile(rng.normal(0, 0.25, 24), 3), np.ones(5) / 5, "same")[24:48]
    stretch = rng.uniform(0.6, 1.0)
    r = radius * (1 + wobble)
    pts = np.stack([np.cos(angles) * r, np.sin(angles) * r * stretch], 1)
    turn = rng.uniform(0, np.pi)
    rot = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    pts = pts @ rot.T + centre
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask > 0


def _stroke(
    rng: np.random.Generator,
    size: int,
    start: tuple[int, int],
    steps: int,
    step: float,
    width: int,
) -> np.ndarray:
    """A wandering line, like a scratch or a hair."""
    heading = rng.uniform(0, 2 * np.pi)
    points = [np.asarray(start, float)]
    for _ in range(steps):
        heading += rng.normal(0, 0.3)
        points.append(points[-1] + step * np.array([np.cos(heading), np.sin(heading)]))
    mask = np.zeros((size, size), np.uint8)
    cv2.polylines(mask, [np.round(points).astype(np.int32)], False, 1, width, cv2.LINE_8)
    return mask > 0


def _luma(pixels: np.ndarray) -> float:
    return float((pixels @ np.array([0.114, 0.587, 0.299], np.float32)).mean())


def _paint(image: np.ndarray, mask: np.ndarray, colour: np.ndarray, strength: float) -> None:
    image[mask] = image[mask] * (1 - strength) + np.asarray(colour, np.float32) * strength


def _apply_defect(kind: str, scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """Draw one defect into `scene.image`; return exactly the pixels it changed, as bool."""
    image, size = scene.image, scene.image.shape[0]
    margin = size // 10
    if kind == "missing":
        edge = scene.body & ~scene.surface if not scene.surface.all() else scene.surface
        centre = _point(rng, edge if edge.any() else scene.body, margin)
        mask = _blob(rng, size, centre, size * rng.uniform(0.035, 0.06)) & scene.body
        image[mask] = scene.backing[mask]
        return mask
    centre = _point(rng, scene.surface, margin)
    if kind == "scratch":
        width = max(1, round(size / 128)) + int(rng.integers(0, 2))
        mask = _stroke(rng, size, centre, 8, size * rng.uniform(0.02, 0.035), width)
        mask &= scene.surface
        dark = _luma(image[mask]) > 100 if mask.any() else True
        image[mask] = image[mask] * 0.45 if dark else image[mask] + 90
        return mask
    if kind == "spot":
        mask = _blob(rng, size, centre, size * rng.uniform(0.02, 0.045)) & scene.surface
        dark = _luma(image[mask]) > 100 if mask.any() else True
        stain = (40, 55, 75) if dark else (170, 205, 225)
        _paint(image, mask, _colour(rng, stain, 0.1), rng.uniform(0.7, 0.85))
        return mask
    if kind == "contamination":
        dark = _luma(image[scene.surface]) > 100
        colour = _colour(rng, (25, 25, 30) if dark else (90, 170, 235), 0.1)
        if rng.random() < 0.5:
            mask = _stroke(rng, size, centre, 12, size * 0.02, 1)
        else:
            mask = np.zeros((size, size), bool)
            for _ in range(int(rng.integers(3, 8))):
                x, y = np.asarray(centre) + rng.normal(0, size * 0.02, 2)
                r = max(1, round(size * rng.uniform(0.004, 0.012)))
                mask |= _blob(rng, size, (x, y), r)
        mask &= scene.body
        _paint(image, mask, colour, 0.9)
        return mask
    if kind == "color":
        mask = _blob(rng, size, centre, size * rng.uniform(0.04, 0.065)) & scene.surface
        direction = rng.normal(0, 1, 3)
        direction -= direction.mean()  # hue change without brightness change
        shift = direction / np.linalg.norm(direction) * rng.uniform(50, 65)
        image[mask] = image[mask] + shift.astype(np.float32)
        return mask
    raise UniadError(f"unknown defect kind {kind!r}; use one of {', '.join(DEFECT_KINDS)}")


def _light(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera and lighting variation: gain, contrast, tint, a gradient and sensor noise."""
    size = image.shape[0]
    contrast, gain = rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2)
    tint = rng.uniform(0.94, 1.06, 3).astype(np.float32)
    ys, xs = _grid(size)
    heading = rng.uniform(0, 2 * np.pi)
    ramp = (xs * np.cos(heading) + ys * np.sin(heading)) / size - 0.5
    field_ = 1 + np.float32(rng.uniform(0, 0.15)) * ramp
    lit = ((image - 128) * np.float32(contrast) + 128) * (gain * field_)[..., None] * tint
    lit += rng.standard_normal(image.shape, np.float32) * np.float32(rng.uniform(1.5, 3))
    return np.clip(lit, 0, 255).round().astype(np.uint8)


def render(
    class_name: str, size: int, key: Sequence[int], defect: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One image (uint8 BGR) and its mask (uint8 {0,1}) for the random key `key`.

    The same key with and without `defect` gives the same scene and lighting, so the two
    images differ only inside the mask.
    """
    spec = next((c for c in CLASSES if c.name == class_name), None)
    if spec is None:
        raise UniadError(f"unknown synthetic class {class_name!r}; use {', '.join(CLASS_NAMES)}")
    scene_seq, defect_seq, light_seq = np.random.SeedSequence(list(key)).spawn(3)
    scene = spec.render(np.random.default_rng(scene_seq), size)
    scene.image = np.ascontiguousarray(scene.image, np.float32)
    mask = np.zeros((size, size), bool)
    if defect is not None:
        defect_rng = np.random.default_rng(defect_seq)
        for _ in range(20):  # a defect that lands on almost nothing is redrawn
            trial = Scene(scene.image.copy(), scene.backing, scene.surface, scene.body)
            mask = _apply_defect(defect, trial, defect_rng)
            if mask.sum() >= max(12, size * size // 4000):
                break
        scene = trial
    return _light(scene.image, np.random.default_rng(light_seq)), mask.astype(np.uint8)


# ---- writing a dataset ----------------------------------------------------------------------


@dataclass
class SynthSummary:
    """What `generate` wrote: per class, image counts and the defect kinds used."""

    root: Path
    size: int
    seed: int
    rows: list[dict[str, object]] = field(default_factory=list)

    @property
    def images(self) -> int:
        return sum(
            int(r["train"]) + int(r["test_good"]) + int(r["test_defective"]) for r in self.rows
        )


def _plan(spec: SynthClass, train: int, test: int) -> list[tuple[str, str, int, str | None]]:
    """(split, folder, index in folder, defect) for every image of one class."""
    jobs: list[tuple[str, str, int, str | None]] = [
        ("train", "good", i, None) for i in range(train)
    ]
    defective = test // 2
    jobs += [("test", "good", i, None) for i in range(test - defective)]
    counts: dict[str, int] = {}
    for i in range(defective):
        kind = spec.defects[i % len(spec.defects)]
        jobs.append(("test", kind, counts.get(kind, 0), kind))
        counts[kind] = counts.get(kind, 0) + 1
    return jobs


def _write_png(path: Path, pixels: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", pixels)
    if not ok:
        raise UniadError(f"could not encode {path}; check the OpenCV installation")
    path.write_bytes(data.tobytes())


def _prepare_target(out: Path, force: bool) -> None:
    """Refuse to overwrite anything that is not a previous synthetic dataset."""
    if not out.exists():
        return
    if not out.is_dir():
        raise UniadError(f"{out} is a file; choose a folder path for --out")
    if not any(out.iterdir()):
        return
    if not (out / MARKER).is_file():
        raise UniadError(f"{out} exists and is not a synthetic dataset; choose a new --out folder")
    if not force:
        raise UniadError(f"{out} already holds a synthetic dataset; pass --force to replace it")


def _install(tmp: Path, out: Path) -> None:
    """Move the finished dataset into place; an old one is removed only after that succeeds."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / "data")
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def generate(
    out: str | Path,
    classes: int | Sequence[str] = 5,
    train_per_class: int = 40,
    test_per_class: int = 20,
    size: int = 256,
    seed: int = 0,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SynthSummary:
    """Write an MVTec-layout dataset to `out`; the same arguments give byte-identical files.

    Images are rendered into a hidden folder beside `out` and moved into place at the end, with
    `uniad_synth.json` written last, so an interrupted run never leaves a complete-looking
    dataset. `progress` is called once per image with the class name.
    """
    names = list(CLASS_NAMES[:classes]) if isinstance(classes, int) else list(classes)
    if isinstance(classes, int) and not 1 <= classes <= len(CLASSES):
        raise UniadError(f"--classes must be 1..{len(CLASSES)} (got {classes})")
    specs = [next((c for c in CLASSES if c.name == n), None) for n in names]
    if None in specs or not specs:
        raise UniadError(f"unknown synthetic classes {names}; use {', '.join(CLASS_NAMES)}")
    if not 32 <= size <= 2048:
        raise UniadError(f"--size must be 32..2048 pixels (got {size})")
    if train_per_class < 1 or test_per_class < 2:
        raise UniadError("need --train-per-class >= 1 and --test-per-class >= 2")
    out = Path(out)
    _prepare_target(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    tmp.chmod(0o755)
    summary = SynthSummary(out, size, seed)
    try:
        for class_index, spec in enumerate(specs):
            jobs = _plan(spec, train_per_class, test_per_class)
            for split, folder, index, defect in jobs:
                key = (
                    seed,
                    class_index,
                    int(split == "test"),
                    int(folder != "good"),
                    index,
                    DEFECT_KINDS.index(defect) if defect else 0,
                )
                image, mask = render(spec.name, size, key, defect)
                target = tmp / spec.name / split / folder / f"{index:03d}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                _write_png(target, image)
                if defect is not None:
                    mask_path = tmp / spec.name / "ground_truth" / folder / f"{index:03d}_mask.png"
                    mask_path.parent.mkdir(parents=True, exist_ok=True)
                    _write_png(mask_path, mask * 255)
                if progress is not None:
                    progress(spec.name)
            defective = test_per_class // 2
            summary.rows.append(
                {
                    "class": spec.name,
                    "train": train_per_class,
                    "test_good": test_per_class - defective,
                    "test_defective": defective,
                    "defects": sorted({d for *_, d in jobs if d}),
                }
            )
        marker = {
            "format_version": FORMAT_VERSION,
            "size": size,
            "seed": seed,
            "train_per_class": train_per_class,
            "test_per_class": test_per_class,
            "classes": summary.rows,
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
        _install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary
