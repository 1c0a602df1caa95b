"""Benchmark results as data (JSON), Markdown (for READMEs and the demo report) and a rich table."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from ..fileio import write_bytes_atomic

WITHHELD = "no speedup:"
"""How a row's note starts when its ratio was withheld (an unstable row or baseline)."""


@dataclass
class BenchRow:
    """One backend x precision x batch measurement, or the reason it was not measured.

    `status` is "ok", "skipped" (backend or artifact unavailable here) or "failed" (it was tried
    and raised); latencies are per batch in ms, `images_per_s` is batch / median latency.
    """

    backend: str
    precision: str
    batch: int
    status: str = "ok"
    reason: str | None = None
    device: str | None = None
    latency_ms: dict[str, float] | None = None
    images_per_s: float | None = None
    e2e_latency_ms: dict[str, float] | None = None
    e2e_images_per_s: float | None = None
    speedup_vs_torch: float | None = None
    e2e_speedup_vs_torch: float | None = None
    e2e_ratio: float | None = None  # end-to-end img/s over engine-only img/s
    e2e_split_ms: dict[str, float] | None = None  # median ms per batch: prepare/engine/maps/other
    e2e_maps: str | None = None  # whose full-resolution maps the end-to-end column computed
    e2e_map_share: float | None = None  # share of end-to-end frames whose map was computed
    peak_rss_mb: float | None = None
    baseline_rss_mb: float | None = None
    gpu_mem_mb: float | None = None
    gflops: float | None = None
    achieved_gflops_per_s: float | None = None
    fraction_of_peak: float | None = None
    runs: int | None = None
    e2e_runs: int | None = None
    unstable: bool = False  # numbers contradict themselves: see bench.stats.instability
    denormals_flushed: bool | None = None  # None: not applicable (GPU) or unknown
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class BenchReport:
    """Everything one `bench` run measured, and on what: the unit the CLI and demo write out."""

    machine: dict[str, Any]
    model: dict[str, Any]
    config: dict[str, Any]
    rows: list[BenchRow]
    roofline: list[dict[str, Any]] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "model": self.model,
            "config": self.config,
            "roofline": self.roofline,
            "rows": [asdict(r) for r in self.rows],
            "notes": self.notes,
        }

    def write_json(self, path: str | Path) -> Path:
        write_bytes_atomic(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode())
        return Path(path)

    def to_markdown(self, title: str = "uniad-edge bench") -> str:
        return render_markdown(self, title)

    def write_markdown(self, path: str | Path, title: str = "uniad-edge bench") -> Path:
        write_bytes_atomic(path, self.to_markdown(title).encode())
        return Path(path)


COLUMNS = (
    "backend",
    "precision",
    "batch",
    "status",
    "device",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "img/s",
    "e2e p50 ms",
    "e2e img/s",
    "e2e/engine",
    "e2e split prep/engine/maps/other ms",
    "vs torch",
    "peak RSS MB",
    "GPU MB",
    "GFLOP/s",
    "of peak",
)


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def speedup_cell(row: BenchRow) -> str:
    """`2.10x`, or why there is no ratio: `n/a (unstable)` where the bench withheld it because
    the row or its PyTorch baseline contradicts itself (a note starting WITHHELD), else `n/a`."""
    if row.speedup_vs_torch is not None:
        return f"{row.speedup_vs_torch:.2f}x"
    withheld = any(note.startswith(WITHHELD) for note in row.notes)
    return "n/a (unstable)" if withheld else "n/a"


def _cells(row: BenchRow) -> list[str]:
    lat = row.latency_ms or {}
    e2e = row.e2e_latency_ms or {}
    peak = None if row.fraction_of_peak is None else f"{100 * row.fraction_of_peak:.1f}%"
    return [
        row.backend,
        row.precision,
        str(row.batch),
        f"{row.status}, unstable" if row.unstable else row.status,
        row.device or "-",
        _num(lat.get("p50")),
        _num(lat.get("p90")),
        _num(lat.get("p99")),
        _num(row.images_per_s),
        _num(e2e.get("p50")),
        _num(row.e2e_images_per_s),
        _num(row.e2e_ratio, 2),
        _split(row.e2e_split_ms),
        speedup_cell(row),
        _num(row.peak_rss_mb, 0),
        _num(row.gpu_mem_mb, 0),
        _num(row.achieved_gflops_per_s),
        peak or "-",
    ]


def _split(split: dict[str, float] | None) -> str:
    """ "1.2/20.4/0.9/0.3": where an end-to-end batch's median time went."""
    if not split:
        return "-"
    return "/".join(f"{split.get(k, 0.0):.1f}" for k in ("prepare", "engine", "maps", "other"))


def maps_phrase(config: dict[str, Any], rows: list[BenchRow]) -> str:
    """Which full-resolution maps the end-to-end column computed, with the share it measured."""
    mode = config.get("e2e_maps") or "all"
    shares = sorted({f"{100 * r.e2e_map_share:.0f}%" for r in rows if r.e2e_map_share is not None})
    what = {
        "all": "every frame's map resized to the frame",
        "ng": "maps resized for NG frames only, as a station saving evidence",
        "none": "verdicts only, no map resized",
    }[mode]
    return f"{what} (maps for {', '.join(shares) or '-'} of frames)"


def machine_line(machine: dict[str, Any]) -> str:
    """CPU, cores, GPUs, Jetson power state and versions in one line."""
    parts = [f"{machine.get('cpu')} ({machine.get('usable_cores')} cores usable)"]
    parts += [f"{g.get('name')} (driver {g.get('driver')})" for g in machine.get("gpus") or []]
    jetson = machine.get("jetson")
    if jetson:
        parts.append(
            f"{jetson.get('board')}, {jetson.get('l4t')}, power mode {jetson.get('power_mode')}, "
            f"clocks locked: {jetson.get('clocks_locked')}"
        )
    versions = machine.get("versions") or {}
    parts.append(", ".join(f"{k} {v}" for k, v in versions.items()))
    return "; ".join(parts)


def _footnotes(report: BenchReport) -> list[str]:
    """Report notes, then each distinct reason or row note once, with the rows it applies to."""
    grouped: dict[tuple[str, str], list[BenchRow]] = {}
    for row in report.rows:
        texts = ([f"{row.status}: {row.reason}"] if row.reason else []) + row.notes
        for text in texts:
            grouped.setdefault((row.backend, text), []).append(row)
    notes = list(report.notes)
    for (backend, text), rows in grouped.items():
        notes.append(f"{_label(backend, rows, report.rows)}: {text}")
    return notes


def _label(backend: str, rows: list[BenchRow], every: list[BenchRow]) -> str:
    """ "tensorrt" when a note holds for all its rows, else "torch fp16" or "torch fp16 batch 8"."""
    own = [r for r in every if r.backend == backend]
    if len(rows) == len(own):
        return backend
    parts = []
    for precision in dict.fromkeys(r.precision for r in rows):
        mine = [r.batch for r in rows if r.precision == precision]
        if len(mine) == len([r for r in own if r.precision == precision]):
            parts.append(precision)
        else:
            parts.append(f"{precision} batch {'/'.join(str(b) for b in mine)}")
    return f"{backend} {', '.join(parts)}"


def render_markdown(report: BenchReport, title: str = "uniad-edge bench") -> str:
    """A self-contained section: machine, model, config, the table, then reasons and notes."""
    model, config, machine = report.model, report.config, report.machine
    lines = [
        f"## {title}",
        "",
        f"- machine: {machine_line(machine)}",
        f"- load average (1/5/15 min) at start: {machine.get('load_average')}, "
        f"at end: {config.get('load_average_end')}",
        f"- model: {model.get('source')}; input {model.get('input_size')}; "
        f"{_num(model.get('gflops'), 2)} GFLOPs/image",
        f"- timing: {config.get('warmup')} warm-up, "
        + (
            f"{config.get('seconds')} s"
            if config.get("seconds")
            else f"{config.get('runs')} timed runs"
        )
        + f" per row, threads {config.get('threads') or 'default'}, end-to-end frames "
        f"{config.get('frame_wh')} (WxH): {maps_phrase(config, report.rows)}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in report.rows]
    if report.roofline:
        lines += ["", "Dense matmul peak (GFLOP/s): " + _peaks_line(report.roofline)]
    footnotes = _footnotes(report)
    if footnotes:
        lines += [""] + [f"- {n}" for n in footnotes]
    return "\n".join(lines) + "\n"


def _peaks_line(peaks: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{p['library']} {p['device']} {p['dtype']} {_num(p.get('gflops_per_s'))}" for p in peaks
    )


def rich_table(report: BenchReport) -> Table:
    """The summary table printed at the end of `uniad-edge bench`; columns empty in every row
    (GPU memory on a CPU machine, % of peak without --roofline) are left out to fit terminals."""
    cells = [_cells(row) for row in report.rows]
    keep = [i for i, name in enumerate(COLUMNS) if i < 4 or any(c[i] != "-" for c in cells)]
    title = escape(f"uniad-edge bench: {report.model.get('source')}")
    table = Table(title=title, title_justify="left")
    for i in keep:
        numeric = COLUMNS[i] not in ("backend", "precision", "status", "device")
        table.add_column(COLUMNS[i], justify="right" if numeric else "left")
    styles = {"ok": "", "skipped": "dim", "failed": "red"}
    for row, row_cells in zip(report.rows, cells, strict=True):
        cells_shown = (escape(row_cells[i]) for i in keep)
        table.add_row(*cells_shown, style=styles.get(row.status, ""))
    caption = [machine_line(report.machine)]
    if any(row.e2e_split_ms for row in report.rows):
        caption.append("end-to-end: " + maps_phrase(report.config, report.rows))
    if report.roofline:
        caption.append("peaks GFLOP/s: " + _peaks_line(report.roofline))
    caption += _footnotes(report)
    table.caption = escape("\n".join(caption))
    table.caption_justify = "left"
    return table
