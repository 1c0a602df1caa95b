"""Peak resident memory of `uniad-edge export`, per preset and variant, each in its own process.

    python benchmarks/export_memory.py [--presets mvtec-224 mvtec-512] [--variants fp32 fp16 ...]
                                       [--cap-gb 6] [--work DIR]

Each export runs the real CLI on a random-init checkpoint of the preset (made once, in a child
too, so the parent stays small). The peak is the kernel's high-water mark of that child
(`os.wait4`'s ru_maxrss); a watchdog polls its resident size and kills it above `--cap-gb`, so
a regression cannot take a shared machine's memory (the row then says "killed"). CPU only.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

VARIANTS = {
    "fp32": [],
    "fp16": ["--precision", "fp16"],
    # the largest whole camera frame the graph may take (crop and resize on the device)
    "frame-4096": ["--frame-size", "4096x4096"],
    "fp16-frame-4096": ["--precision", "fp16", "--frame-size", "4096x4096"],
    "batch-8": ["--batch", "8"],  # a static batch runs its checks 8 frames at a time
}
MAKE_CHECKPOINT = (
    "import sys; from uniad_edge.presets import PRESETS; "
    "from uniad_edge.model import build_model, save_checkpoint; "
    "save_checkpoint(sys.argv[2], build_model(PRESETS[sys.argv[1]], pretrained=False).eval())"
)


def resident_bytes(pid: int) -> int:
    """VmRSS of `pid` (0 once it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_bounded(command: list[str], cap_bytes: int, poll_s: float = 0.1) -> tuple[int, int, bool]:
    """Run `command`; (exit status, peak resident bytes, killed by the watchdog)."""
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed, reaped = threading.Event(), threading.Event()

    def watch() -> None:  # never polls the child: that would reap it before wait4 reads its usage
        while not reaped.wait(poll_s):
            if resident_bytes(child.pid) > cap_bytes:
                killed.set()
                child.send_signal(signal.SIGKILL)
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stderr = child.stderr.read() if child.stderr else b""
    _, status, usage = os.wait4(child.pid, 0)
    reaped.set()
    child.returncode = os.waitstatus_to_exitcode(status)
    watcher.join()
    if child.returncode and not killed.is_set():
        sys.stderr.write(stderr.decode(errors="replace")[-2000:])
    return child.returncode, usage.ru_maxrss * 1024, killed.is_set()


def measure(preset: str, variant: str, work: Path, cap_bytes: int) -> list[str]:
    ckpt = work / f"{preset}.pth"
    if not ckpt.exists():
        subprocess.run([sys.executable, "-c", MAKE_CHECKPOINT, preset, str(ckpt)], check=True)
    out = work / f"{preset}-{variant}"
    command = [sys.executable, "-m", "uniad_edge", "export", "--ckpt", str(ckpt)]
    command += ["--out", str(out), *VARIANTS[variant]]
    started = time.perf_counter()
    code, peak, killed = run_bounded(command, cap_bytes)
    seconds = time.perf_counter() - started
    state = "killed at cap" if killed else ("ok" if code == 0 else f"exit {code}")
    return [preset, variant, f"{peak / 2**30:.2f}", f"{seconds:.0f}", state]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["cifar10", "mvtec-224", "lite0-224"])
    parser.add_argument("--variants", nargs="+", default=["fp32", "fp16"], choices=list(VARIANTS))
    parser.add_argument("--cap-gb", type=float, default=6.0, help="watchdog kill threshold")
    parser.add_argument("--work", type=Path, help="folder for checkpoints and exports")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        table = Table(title=f"export peak resident memory (watchdog at {args.cap_gb:g} GB)")
        for column in ("preset", "variant", "peak RSS GiB", "seconds", "result"):
            table.add_column(column)
        for preset in args.presets:
            for variant in args.variants:
                row = measure(preset, variant, work, int(args.cap_gb * 2**30))
                print(" | ".join(row), flush=True)
                table.add_row(*row)
        Console().print(table)


if __name__ == "__main__":
    main()
