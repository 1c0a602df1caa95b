"""`run_bench`: plan the rows, measure each in its own worker process, derive the comparisons."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..artifacts import CHECKPOINT, URL
from ..errors import UniadError
from ..runtime.backends.registry import get_spec
from .artifacts import ModelSource, Unavailable, resolve, torch_missing
from .config import BenchConfig, bench_backends
from .machine import describe_machine, load_average
from .report import WITHHELD, BenchReport, BenchRow
from .roofline import peak_for
from .stats import QUIET_HINT, images_per_second, instability
from .worker import PREFIX

Progress = Callable[[str, float], None]
"""(what is running, overall fraction done 0..1): how `run_bench` reports progress."""

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
CPU_FP16_NOTES = {
    "torch": "float16 autocast on a CPU is emulated: far slower than fp32, shown for completeness",
    "onnxruntime": "ONNX Runtime has few float16 CPU kernels: expect casts and no speedup",
}


def run_bench(config: BenchConfig, progress: Progress | None = None) -> BenchReport:
    """Measure every backend x precision x batch of `config` on this machine.

    Rows that cannot run here come back "skipped" with the reason, rows that raise come back
    "failed" with the error; neither stops the run.
    """
    report = progress or (lambda _what, _fraction: None)
    machine = describe_machine()
    with tempfile.TemporaryDirectory(prefix="uniad-bench-") as tmp:
        workdir = Path(config.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        report("preparing the model", 0.0)
        source = resolve(config.model, config.preset, workdir)
        gflops = source.gflops
        plan = [
            BenchRow(backend, precision, batch)
            for backend in bench_backends()
            if backend in config.backends
            for precision in config.precisions
            for batch in config.batches
        ]
        jobs = [_job(row, source, config, workdir) for row in plan]
        measured = [(row, job) for row, job in zip(plan, jobs, strict=True) if job is not None]
        steps = len(measured) + int(config.roofline)
        peaks = None
        for i, (row, job) in enumerate(measured):
            label = f"{row.backend} {row.precision} batch {row.batch}"
            result = run_worker(
                job, config.threads, lambda f, i=i, s=label: report(s, (i + f) / steps)
            )
            _fill(row, result, gflops)
        if config.roofline:
            report("roofline: dense matmul peaks", len(measured) / steps)
            result = run_worker({"kind": "roofline", "size": 1024, "seconds": 1.0}, config.threads)
            peaks = result.get("peaks")
        report("done", 1.0)
    notes = _derive(plan, peaks, config)
    if source.backbone_pretrained is False:
        notes.insert(0, "random-init backbone: these numbers are speed only, not accuracy")
    return BenchReport(
        machine=machine,
        model={
            "source": source.description,
            "kind": source.kind,
            "preset": None if source.preset is None else source.preset.name,
            "input_size": _input_size(source),
            "gflops": gflops,
            "backbone_pretrained": source.backbone_pretrained,
        },
        config={**config.to_dict(), "load_average_end": load_average()},
        rows=plan,
        roofline=peaks,
        notes=notes,
    )


def _input_size(source: ModelSource) -> list[int] | None:
    """From the preset, else from the artifact's (or server's) metadata."""
    if source.preset is not None:
        return list(source.preset.input_size)
    return None if source.metadata is None else list(source.metadata.input_size)


def _job(row: BenchRow, source: ModelSource, config: BenchConfig, workdir: Path) -> dict | None:
    """The worker job for a row, or None after marking the row skipped with its reason."""
    job: dict[str, Any] = {
        "kind": "row",
        "backend": row.backend,
        "precision": row.precision,
        "batch": row.batch,
        "warmup": config.warmup,
        "runs": config.runs,
        "seconds": config.seconds,
        "threads": config.threads,
        "frame_size": [config.frame_wh[1], config.frame_wh[0]],
        "e2e": config.e2e,
        "e2e_maps": config.e2e_maps,
        "providers": list(config.providers) if config.providers else None,
    }
    try:
        job["artifact"], job["preset"] = _artifact(row, source, config, workdir)
    except Unavailable as exc:
        row.status, row.reason = "skipped", str(exc)
        return None
    except UniadError as exc:
        row.status, row.reason = "failed", str(exc)
        return None
    return job


def _artifact(
    row: BenchRow, source: ModelSource, config: BenchConfig, workdir: Path
) -> tuple[str | None, dict[str, Any] | None]:
    """What the row's backend loads: PyTorch a checkpoint (or random weights of the artifact's
    architecture), Triton the served URL, every other backend the artifact of its kind that
    the export format table makes (`ModelSource.artifact_for`)."""
    spec = get_spec(row.backend)
    if row.precision not in spec.precisions:
        raise Unavailable(f"{row.backend} does not run {row.precision}")
    if spec.artifact == CHECKPOINT:
        missing = torch_missing()
        if missing:
            raise Unavailable(missing)
        checkpoint = source.checkpoint_for_torch()
        if checkpoint is None:
            row.notes.append(
                "random weights with the artifact's architecture: same shapes, not the same "
                f"function, speed only{source.torch_weights_note}"
            )
        elif source.kind not in ("checkpoint", "preset"):
            row.notes.append(f"weights of {checkpoint}, the checkpoint the model was exported from")
        assert source.preset is not None
        return (None if checkpoint is None else str(checkpoint)), source.preset.to_dict()
    if spec.artifact == URL:
        if source.url is None:
            raise Unavailable(f"{row.backend} measures a served model: pass its URL as --model")
        return source.url, None
    engine_dir = config.engine_dir or workdir / "engines"
    path = source.artifact_for(spec.artifact, row.precision, max(config.batches), engine_dir)
    return str(path), None


def run_worker(
    job: dict[str, Any], threads: int | None, progress: Callable[[float], None] | None = None
) -> dict[str, Any]:
    """Run one job in a fresh interpreter; a crash (segfault, OOM kill) is a failed result."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), env.get("PYTHONPATH")]))
    if threads is not None:  # read by numpy's BLAS and OpenMP at import: must be set up front
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(threads)
    cmd = [sys.executable, "-m", "uniad_edge.bench.worker"]
    result: dict[str, Any] | None = None
    with tempfile.TemporaryFile("w+") as stderr:
        with subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
        ) as proc:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(job))
            proc.stdin.close()
            for line in proc.stdout:
                if not line.startswith(PREFIX):
                    continue
                message = json.loads(line[len(PREFIX) :])
                if message["event"] == "progress" and progress is not None:
                    progress(float(message["fraction"]))
                elif message["event"] == "result":
                    result = message["result"]
        if result is None:
            stderr.seek(0)
            tail = [ln for ln in stderr.read().strip().splitlines() if ln.strip()][-1:]
            detail = f": {tail[0]}" if tail else ""
            return {"status": "failed", "reason": f"worker exited with {proc.returncode}{detail}"}
    return result


def _fill(row: BenchRow, result: dict[str, Any], gflops: float | None) -> None:
    """Copy a worker result into its row and derive throughput from the latencies."""
    known = set(asdict(row))
    for key, value in result.items():
        if key in known:
            setattr(row, key, value)
    if not row.ok or row.latency_ms is None:
        return
    row.images_per_s = images_per_second(row.latency_ms, row.batch)
    if row.e2e_latency_ms is not None:
        row.e2e_images_per_s = images_per_second(row.e2e_latency_ms, row.batch)
        row.e2e_ratio = row.e2e_images_per_s / row.images_per_s
    if gflops is not None:
        row.gflops = gflops
        row.achieved_gflops_per_s = gflops * row.images_per_s
    unstable = instability(row.latency_ms, row.e2e_latency_ms)
    if unstable:
        row.unstable = True
        row.notes.append(f"unstable ({unstable}): {QUIET_HINT}")
    if row.denormals_flushed is False:
        row.notes.append(
            "denormals NOT flushed to zero (this CPU cannot): subnormal floats may slow it down"
        )
    if row.precision == "fp16" and row.device == "cpu" and row.backend in CPU_FP16_NOTES:
        row.notes.append(CPU_FP16_NOTES[row.backend])


def _derive(
    rows: list[BenchRow], peaks: list[dict[str, Any]] | None, config: BenchConfig
) -> list[str]:
    """Speedups against PyTorch fp32 at the same batch, and achieved/peak; notes on gaps."""
    notes = []
    base = {r.batch: r for r in rows if r.backend == "torch" and r.precision == "fp32" and r.ok}
    if not base:
        torch_rows = [r for r in rows if r.backend == "torch" and r.precision == "fp32"]
        why = torch_rows[0].reason if torch_rows and torch_rows[0].reason else "not requested"
        notes.append(f"speedup_vs_torch is null: PyTorch fp32 was not measured ({why})")
    for row in rows:
        ref = base.get(row.batch)
        if row.ok and ref is not None and (row.unstable or ref.unstable):
            # A ratio over numbers the bench itself distrusts was the demo's 31.89x headline.
            whose = "its own" if row.unstable else "the PyTorch baseline's"
            row.notes.append(f"{WITHHELD} {whose} numbers are unstable")
        elif row.ok and ref is not None and ref.images_per_s and row.images_per_s:
            row.speedup_vs_torch = row.images_per_s / ref.images_per_s
            if row.e2e_images_per_s and ref.e2e_images_per_s:
                row.e2e_speedup_vs_torch = row.e2e_images_per_s / ref.e2e_images_per_s
        if peaks and row.achieved_gflops_per_s and row.device:
            # Mixed-precision graphs keep some layers in fp32, and a CPU may emulate fp16:
            # an fp16 row is read against the better of the two peaks.
            dtypes = ("fp32",) if row.precision == "fp32" else ("fp32", "fp16")
            rates = [peak_for(peaks, row.device, d) for d in dtypes]
            peak = max((r for r in rates if r), default=None)
            if peak:
                row.fraction_of_peak = row.achieved_gflops_per_s / peak
    if not config.roofline:
        notes.append("achieved/peak not measured: pass --roofline")
    return notes
