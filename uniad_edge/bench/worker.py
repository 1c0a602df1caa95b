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
POOL_FRAMES = 10  # end-to-end frames per row (at least): enough for a 10 % NG share
NG_SHARE = 0.1  # share of frames judged NG in the end-to-end column's "ng" map mode

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
    baseline = rss_mb()
    backend, device = open_backend(job)
    batch = int(job["batch"])
    h, w = backend.metadata.graph_input_size  # whole frames for an `export --frame-size` graph
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
        result.update(measure_end_to_end(backend, job, args, lambda f: report((1 + f) / phases)))
    peak_gpu = getattr(backend, "peak_gpu_mb", lambda: None)()
    result["gpu_mem_mb"] = (
        peak_gpu if peak_gpu is not None else (gpu_memory_mb() if device == "cuda" else None)
    )
    backend.close()
    result["peak_rss_mb"] = peak_rss_mb()
    result["denormals_flushed"] = backend.flushes_denormals
    return result


def frame_pool(batch: int, frame_hw: tuple[int, int]) -> list[list[np.ndarray]]:
    """Distinct noisy frames, cut into batches: enough of them (>= POOL_FRAMES) that a stated
    NG share of them can be picked out by a threshold, whatever the batch size."""
    rng = np.random.default_rng(0)
    count = batch * -(-POOL_FRAMES // batch)
    frames = list(rng.integers(0, 256, (count, *frame_hw, 3), dtype=np.uint8))
    return [frames[i : i + batch] for i in range(0, count, batch)]


def share_threshold(scores: list[float], share: float) -> float:
    """The threshold that makes round(share x frames) of the scored frames NG (at least one),
    so `--e2e-maps ng` resizes the maps of a stated share however the weights score noise."""
    ranked = sorted(scores, reverse=True)
    return ranked[max(1, round(share * len(ranked))) - 1]


def measure_end_to_end(
    backend: Backend, job: dict[str, Any], args: tuple[Any, ...], report: Report
) -> dict[str, Any]:
    """Frames at camera size through `Detector`, as a station scores them: a verdict for every
    frame, the full-resolution map for every frame ("all"), the NG ones ("ng", NG_SHARE of the
    frames by threshold) or none. Also where the time goes: preparation, engine, maps."""
    from ..runtime.detector import Detector

    batch, maps = int(job["batch"]), job.get("e2e_maps", "ng")
    # A graph that prepares frames itself takes only its own frame size.
    batches = frame_pool(batch, backend.metadata.frame_size or tuple(job["frame_size"]))
    probe = Detector(backend, max_batch=batch)
    scores = [d.score for frames in batches for d in probe.predict(frames)]
    detector = Detector(backend, max_batch=batch, threshold=share_threshold(scores, NG_SHARE))
    phases: dict[str, list[float]] = {"prepare": [], "engine": [], "maps": []}
    counts = {"frames": 0, "maps": 0}
    turn = iter(range(1 << 62))

    def end_to_end() -> None:
        detections = detector.predict(batches[next(turn) % len(batches)])
        t0 = time.perf_counter()
        for detection in detections:
            if maps == "all" or (maps == "ng" and detection.verdict == "NG"):
                _ = detection.anomaly_map
                counts["maps"] += 1
        phases["maps"].append((time.perf_counter() - t0) * 1e3)
        phases["prepare"].append(sum(d.preprocess_ms for d in detections))
        phases["engine"].append(sum(d.inference_ms for d in detections))
        counts["frames"] += len(detections)

    e2e = time_calls(end_to_end, *args, report)
    timed = len(e2e)
    parts = {name: np.asarray(values[-timed:]) for name, values in phases.items()}
    parts["other"] = np.asarray(e2e) * 1e3 - sum(parts.values())
    split = {name: float(np.median(values)) for name, values in parts.items()}
    return {
        "e2e_latency_ms": summarize(e2e),
        "e2e_runs": timed,
        "e2e_split_ms": split,
        "e2e_maps": maps,
        "e2e_map_share": counts["maps"] / max(1, counts["frames"]),
    }


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
