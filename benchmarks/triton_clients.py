"""Many cameras, one server: 1, 4 and 8 camera clients against one tritonserver vs the same
number of in-process runtimes, measured in the same run on this machine.

    python benchmarks/triton_clients.py [--model export/model.onnx | --preset mvtec-224 --layers 2]
        [--clients 1,4,8] [--seconds 10] [--json out.json]

Each client is a thread that scores one frame at a time through `Detector` (a station sends
frames as they come): in-process, each client owns an ONNX Runtime session; through Triton, each
owns a gRPC connection to one server whose dynamic batcher merges concurrent frames. The server
is nvidia-pytriton's `tritonserver` (Python backend running ONNX Runtime, CPU) on 127.0.0.1.
--preset exports a random-weight UniAD of that preset (`--layers` encoder and decoder layers,
needs the [train] extra): speed only. Without either, the test fixture graph is used, widened
with convolutions so inference, not Python, dominates as it does for a real UniAD model.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _fixture import TESTS, add_model_arguments, describe_model, model_or_fixture, synthetic_frames

from uniad_edge.export.triton_repo import TritonOptions, export_triton
from uniad_edge.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from uniad_edge.runtime.backends.triton_backend import TritonBackend
from uniad_edge.runtime.detector import Detector

sys.path.insert(0, str(TESTS))
from triton_helpers import TritonServer  # noqa: E402 - lives with the tests that share it


def run_clients(open_detector, clients: int, seconds: float, frames: list[np.ndarray]) -> dict:
    """`clients` threads scoring frames for `seconds` after one warm-up frame each."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def client(index: int) -> None:
        try:
            with open_detector() as detector:
                detector(frames[index % len(frames)])
                barrier.wait()
                i = index
                while not stop.is_set():
                    t0 = time.perf_counter()
                    detector(frames[i % len(frames)])
                    latencies[index].append(time.perf_counter() - t0)
                    i += clients
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    flat = np.array([t for per_client in latencies for t in per_client]) * 1e3
    return {
        "clients": clients,
        "images": int(flat.size),
        "images_per_s": flat.size / wall,
        "p50_ms": float(np.percentile(flat, 50)),
        "p99_ms": float(np.percentile(flat, 99)),
    }


def export_preset(name: str, layers: int | None, workdir: Path) -> Path:
    """A random-weight UniAD of preset `name` exported to dynamic-batch ONNX (speed only)."""
    from uniad_edge.export import export_onnx
    from uniad_edge.model import build_model, save_checkpoint
    from uniad_edge.presets import get_preset

    preset = get_preset(name)
    if layers is not None:
        preset = preset.replace(num_encoder_layers=layers, num_decoder_layers=layers)
    ckpt = save_checkpoint(workdir / "random.pth", build_model(preset, pretrained=False).eval(), {})
    return export_onnx(ckpt, workdir, "model", verify=False).onnx_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser, "exported dynamic-batch .onnx (default: test fixture)")
    parser.add_argument("--preset", help="export a random-weight model of this preset")
    parser.add_argument("--layers", type=int, help="--preset: encoder and decoder layers")
    parser.add_argument("--clients", default="1,4,8", help="comma-separated client counts")
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--instances", type=int, default=1, help="Triton model instances")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    frames = synthetic_frames(16)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.preset:
            model = export_preset(args.preset, args.layers, work)
        else:
            model = model_or_fixture(args.model, work, args.size, args.extra_work)
        options = TritonOptions(
            backend="python",
            max_batch_size=8,
            preferred_batch_sizes=(4, 8),
            instance_count=args.instances,
            ort_threads=args.threads,
        )
        export_triton(model, work / "repo", options)
        server = TritonServer(work / "repo", work / "server")
        server.start()
        try:
            url = server.url("uniad")
            rows = []
            for clients in counts:
                local = run_clients(
                    lambda: Detector(OnnxRuntimeBackend(model, threads=args.threads)),
                    clients,
                    args.seconds,
                    frames,
                )
                remote = run_clients(
                    lambda: Detector(TritonBackend(url)), clients, args.seconds, frames
                )
                rows += [{"mode": "in-process", **local}, {"mode": "triton-grpc", **remote}]
                ratio = remote["images_per_s"] / local["images_per_s"]
                print(  # noqa: T201 - a benchmark prints its rows as they come
                    f"{clients} client(s): in-process {local['images_per_s']:7.1f} img/s "
                    f"(p50 {local['p50_ms']:.1f} ms, p99 {local['p99_ms']:.1f} ms) | triton "
                    f"{remote['images_per_s']:7.1f} img/s (p50 {remote['p50_ms']:.1f} ms, p99 "
                    f"{remote['p99_ms']:.1f} ms) | triton/in-process {ratio:.2f}x"
                )
        finally:
            server.stop()
    described = describe_model(args)
    if args.preset:
        described = f"random-weight {args.preset}, {args.layers or 'all'} layers"
    print(f"model: {described}; tritonserver ready in {server.startup_s:.2f} s")  # noqa: T201
    if args.json:
        summary = {"model": described, "server_startup_s": server.startup_s, "rows": rows}
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
