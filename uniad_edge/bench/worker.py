"""One benchmark row (or the roofline) in a fresh process: `python -m uniad_edge.bench.worker`.

A fresh process per row makes its peak RSS the row's own (no torch in an ONNX Runtime row, no
leftover arena from the previous backend) and lets thread counts be set before numpy loads.
The job arrives as JSON on stdin; progress and the result leave as prefixed JSON lines on stdout,
so stray prints from native libraries cannot be mistaken for them.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ..errors import UniadError
from ..presets import Preset
from ..runtime.backends.base import Backend
from ..runtime.backends.registry import construct
from .stats import summarize

PREFIX = "@@uniad-bench "
MIN_TIMED_RUNS = 3

Report = Callable[[float], None]


def _status_mb(field: str) -> float | None:
    """A memory field of /proc/self/status (Linux, Jetson) in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_mb() -> float | None:
    """Current resident set size: the baseline before the model loads."""
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """This process's RSS high-water mark.

    VmHWM belongs to the address space that exec created, so it is this row's own; ru_maxrss
    (the fallback off Linux) also carries the parent's peak from before the exec.
    """
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def gpu_memory_mb() -> float | None:
    """This process's GPU memory as nvidia-smi sees it (None without nvidia-smi, e.g. Jetson)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        pid, _, used = line.partition(",")
        if pid.strip() == str(os.getpid()):
            return float(used)
    return None


def time_calls(
    fn: Callable[[], object],
    warmup: int,
    runs: int,
    seconds: float | None,
    report: Report,
) -> list[float]:
    """Per-call wall times (s) after `warmup` calls: `runs` calls, or as many as fit in
    `seconds` (at least MIN_TIMED_RUNS, so percentiles exist)."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if seconds is None:
            report(len(times) / runs)
            if len(times) >= runs:
                return times
        else:
            elapsed = time.perf_counter() - start
            report(min(1.0, elapsed / seconds))
            if elapsed >= seconds and len(times) >= MIN_TIMED_RUNS:
                return times


def open_backend(job: dict[str, Any]) -> tuple[Backend, str]:
    """The row's backend (from the registry) and the device it runs on ("cpu" or "cuda").

    A job without an artifact carries a preset: random weights of that architecture (torch).
    """
    source = job.get("artifact") or Preset.from_dict(job["preset"])
    backend = construct(
        job["backend"],
        source,
        providers=job.get("providers"),
        threads=job["threads"],
        precision=job["precision"],
    )
    return backend, backend.device_type


def measure_row(job: dict[str, Any], report: Report) -> dict[str, Any]:
    """Engine-only timing on a preallocated input batch, then end-to-end through `Detector`."""
    from ..runtime.detector import Detector

    baseline = rss_mb()
    backend, device = open_backend(job)
    batch = int(job["batch"])
    h, w = backend.metadata.input_size
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch, h, w, 3), dtype=np.uint8)
    phases = 2 if job["e2e"] else 1
    args = (job["warmup"], job["runs"], job["seconds"])
    engine = time_calls(lambda: backend.infer(images), *args, lambda f: report(f / phases))
    result: dict[str, Any] = {
        "status": "ok",
        "device": device,
        "latency_ms": summarize(engine),
        "runs": len(engine),
        "baseline_rss_mb": baseline,
    }
    if job["e2e"]:
        fh, fw = job["frame_size"]
        frames = list(rng.integers(0, 256, (batch, fh, fw, 3), dtype=np.uint8))
        detector = Detector(backend, max_batch=batch)

        def end_to_end() -> None:
            for detection in detector.predict(frames):
                _ = detection.anomaly_map, detection.verdict

        e2e = time_calls(end_to_end, *args, lambda f: report((1 + f) / phases))
        result.update(e2e_latency_ms=summarize(e2e), e2e_runs=len(e2e))
    peak_gpu = getattr(backend, "peak_gpu_mb", lambda: None)()
    result["gpu_mem_mb"] = (
        peak_gpu if peak_gpu is not None else (gpu_memory_mb() if device == "cuda" else None)
    )
    backend.close()
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def run_job(job: dict[str, Any], report: Report) -> dict[str, Any]:
    """Errors become a "failed" result with a one-line reason instead of a dead row."""
    try:
        if job["kind"] == "roofline":
            from .roofline import measure_peaks

            return {"status": "ok", "peaks": measure_peaks(job["size"], job["seconds"])}
        return measure_row(job, report)
    except UniadError as exc:
        return {"status": "failed", "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - any backend failure is a row result, not a crash
        traceback.print_exc(file=sys.stderr)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {"status": "failed", "reason": f"{type(exc).__name__}: {first}".rstrip(": ")}


def _emit(out: TextIO, event: str, **data: Any) -> None:
    out.write(PREFIX + json.dumps({"event": event, **data}) + "\n")
    out.flush()


def main() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # library prints must not interleave with the protocol
    job = json.loads(sys.stdin.read())
    result = run_job(job, lambda fraction: _emit(out, "progress", fraction=fraction))
    _emit(out, "result", result=result)


if __name__ == "__main__":
    main()
