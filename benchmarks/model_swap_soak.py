"""Soak: 50 model swaps under 2 free-running cameras; resident memory after each swap.

    python benchmarks/model_swap_soak.py [--swaps 50] [--size 224] [--extra-work 24]

Two fixture models (or --model A --model B) are swapped in turn while both cameras are scored
at full speed. Each swap opens, checks and warms up a new ONNX Runtime session and closes the old
one, so RSS must not trend upwards: the report compares the highest RSS of the first and the
last quarter of the swaps (allocator noise makes single samples swing by tens of MiB).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _fixture import TESTS
from soak import rss_mib

from uniad_edge.runtime.capture import Reader
from uniad_edge.runtime.station import CameraConfig, Station, StationConfig


class Forever(Reader):
    """A live camera at full speed: the same frame over and over."""

    live = True
    description = "synthetic camera"

    def __init__(self, size: int) -> None:
        sys.path.insert(0, str(TESTS))
        from onnx_fixtures import defect_frame

        self.frame = defect_frame((size, size))

    def open(self) -> None:
        pass

    def read(self):
        time.sleep(0.001)
        return self.frame.copy(), ""

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", action="append", help="two models to alternate (default: fixtures)"
    )
    parser.add_argument("--swaps", type=int, default=50)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--extra-work", type=int, default=24)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            models = [Path(m) for m in args.model]
        else:
            sys.path.insert(0, str(TESTS))
            from onnx_fixtures import named_model

            models = [
                named_model(Path(tmp) / f"{n}.onnx", f"model-{n}", input_size=(args.size,) * 2,
                            extra_work=args.extra_work, pool=pool)
                for n, pool in (("a", 5), ("b", 3))
            ]  # fmt: skip
        config = StationConfig(
            cameras=[CameraConfig(f"cam{i}", Forever(args.size)) for i in range(2)],
            model=models[0],
        )
        rss: list[float] = []
        started = time.perf_counter()
        with Station(config) as station:
            station.start()
            for i in range(args.swaps):
                station.swap_model(models[(i + 1) % 2]).result(300)
                rss.append(rss_mib())
                print(f"swap {i + 1:3d}: {station.model_id:12s} RSS {rss[-1]:7.1f} MiB", flush=True)
            station.stop()
            summary = station.wait(300)
        elapsed = time.perf_counter() - started
    assert summary is not None
    quarter = max(1, len(rss) // 4)
    first, last = max(rss[:quarter]), max(rss[-quarter:])
    print(
        f"{args.swaps} swaps in {elapsed:.1f} s under 2 cameras, {summary.frames} frames scored; "
        f"max RSS in the first quarter {first:.1f} MiB, in the last {last:.1f} MiB "
        f"({(last - first) / first * 100:+.1f}%), min {min(rss):.1f}, max {max(rss):.1f} MiB"
    )


if __name__ == "__main__":
    main()
