"""Describe the machine a benchmark ran on: numbers without it cannot be compared or trusted."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..versions import package_versions


def _run(*cmd: str, timeout: float = 10.0) -> str | None:
    """stdout of a probe command, or None when it is missing, fails or needs root."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="ignore").splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def load_average() -> list[float] | None:
    """1/5/15-minute load: a loaded machine makes CPU timings noisy, so reports carry it."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def gpus() -> list[dict[str, str]]:
    """NVIDIA GPUs from nvidia-smi (absent on CPU machines and on most Jetsons)."""
    out = _run(
        "nvidia-smi",
        "--query-gpu=name,driver_version,memory.total,compute_cap",
        "--format=csv,noheader,nounits",
    )
    rows = []
    for line in (out or "").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3:
            keys = ("name", "driver", "memory_mib", "compute_capability")
            rows.append(dict(zip(keys, parts, strict=False)))
    return rows


def jetson() -> dict[str, Any] | None:
    """Board, L4T release, power mode and clock lock on a Jetson; None elsewhere.

    Both `nvpmodel -q` and `jetson_clocks --show` may need root: then the field says so rather
    than guessing, since an unlocked or low-power board can be several times slower.
    """
    release = Path("/etc/nv_tegra_release")
    model_file = Path("/proc/device-tree/model")
    try:
        board = (
            model_file.read_text(errors="ignore").strip("\x00\n ") if model_file.exists() else ""
        )
    except OSError:
        board = ""
    if not release.exists() and "jetson" not in board.lower():
        return None
    l4t = release.read_text(errors="ignore").splitlines()[0].strip() if release.exists() else None
    power = _run("nvpmodel", "-q")
    clocks = _run("jetson_clocks", "--show")
    locked = None
    if clocks is not None:
        freqs = [ln for ln in clocks.splitlines() if "MinFreq" in ln and "MaxFreq" in ln]
        locked = bool(freqs) and all(_min_equals_max(ln) for ln in freqs)
    return {
        "board": board or None,
        "l4t": l4t,
        "power_mode": power.splitlines()[0] if power else "unknown (run `sudo nvpmodel -q`)",
        "clocks_locked": locked,
        "clocks_note": None
        if clocks is not None
        else "unknown (`jetson_clocks --show` needs root)",
    }


def _min_equals_max(line: str) -> bool:
    """`... MinFreq=729600 MaxFreq=2201600 CurrentFreq=...` -> whether min == max."""
    fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
    return fields.get("MinFreq") is not None and fields.get("MinFreq") == fields.get("MaxFreq")


def describe_machine() -> dict[str, Any]:
    """CPU, cores, memory, GPUs and driver, Jetson power state, Python and package versions."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "hostname": platform.node(),
        "os": platform.platform(),
        "cpu": _cpu_model(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": _memory_gib(),
        "gpus": gpus(),
        "jetson": jetson(),
        "python": sys.version.split()[0],
        "versions": package_versions(),
        "load_average": load_average(),
    }
