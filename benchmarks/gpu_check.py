"""One GPU check a person runs: float16 vs float32, parity with the official code, torch speed.

    python benchmarks/gpu_check.py --out gpu.json            # any CUDA machine (< 4 min)
    python benchmarks/gpu_check.py --device cpu --quick --out gpu.json   # CPU smoke run

Random-init weights with the backbone re-initialised Kaiming-normal (fan-in) after
`torch.manual_seed(0)` (the large activations issue 17 measured), every preset. Sections:
`parity` (float32 reconstruction vs tests/official_reference.py), `fp16` (per preset, on the
stress frames of uniad_edge/stress.py: autocast, the model in half with a float32 head,
and the `--half` ONNX graph in ONNX Runtime CPU vs the float32 graph), `bench` (the torch rows of
`bench`: batch 1/8/32, fp32/fp16, ms per frame) and `tensorrt` (only where `tensorrt` imports:
an FP16 engine of the `--half` graph against ONNX Runtime CPU, two worker threads). Each section
records its error in the JSON instead of stopping the run. Needs torch, numpy, onnx,
onnxruntime, opencv and this package (efficientnet_pytorch where the backbone uses it).
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from uniad_edge.presets import PRESETS, Preset  # noqa: E402
from uniad_edge.stress import stress_frames  # noqa: E402

QUICK_SIZE = (64, 64)
BATCHES = (1, 8, 32)


def rel_l2(reference: np.ndarray, candidate: np.ndarray) -> float:
    """||candidate - reference|| / ||reference||; inf when the candidate is not finite."""
    ref, new = np.asarray(reference, np.float64), np.asarray(candidate, np.float64)
    if not (np.isfinite(ref).all() and np.isfinite(new).all()):
        return float("inf")
    return float(np.linalg.norm(new - ref) / max(np.linalg.norm(ref), 1e-12))


def presets(quick: bool) -> dict[str, Preset]:
    """Every preset; --quick shrinks them to 64 px, one layer each way, a 3x3 neighbourhood."""
    if not quick:
        return dict(PRESETS)
    small = {}
    for name, preset in PRESETS.items():
        small[name] = preset.replace(
            input_size=QUICK_SIZE, num_encoder_layers=1, num_decoder_layers=1, neighbor_size=(3, 3)
        )
    return small


def kaiming_model(preset: Preset, device: torch.device) -> torch.nn.Module:
    from uniad_edge.model import build_model

    torch.manual_seed(0)
    model = build_model(preset, pretrained=False).eval()
    model.backbone.init_random()
    return model.to(device)


def section(results: dict[str, Any], name: str, fn: Callable[[], Any]) -> None:
    """Run one section; its error (one line plus the traceback's tail) goes into the JSON."""
    started = time.perf_counter()
    try:
        results[name] = fn()
    except Exception as exc:  # noqa: BLE001 - a GPU check reports every failure and goes on
        tail = traceback.format_exc().strip().splitlines()[-6:]
        results[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": tail}
    print(f"[{name}] {time.perf_counter() - started:.1f} s", flush=True)


def environment(device: torch.device) -> dict[str, Any]:
    import onnx
    import onnxruntime as ort

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "numpy": np.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    try:
        import tensorrt

        info["tensorrt"] = tensorrt.__version__
    except Exception as exc:  # noqa: BLE001 - absent or broken: both mean no engine section
        info["tensorrt"] = f"not importable ({type(exc).__name__})"
    return info


def parity(all_presets: dict[str, Preset], device: torch.device) -> dict[str, Any]:
    """float32 reconstruction: ours vs the official code on the same weights and features."""
    sys.path.insert(0, str(ROOT / "tests"))
    from official_reference import official_reconstruct, to_official_state

    out = {}
    for name, preset in all_presets.items():
        model = kaiming_model(preset, device)
        frames = _frames(preset, 4)
        with torch.inference_mode():
            features = _fused(model)(torch.from_numpy(frames).to(device), features_only=True)
            ours = model.reconstruction(features)
            state = {k: v.to(device) for k, v in to_official_state(model).items()}
            theirs = official_reconstruct(state, features, preset.nhead, preset.neighbor_size[0])
        out[name] = {"rec_rel_l2": rel_l2(theirs.cpu().numpy(), ours.cpu().numpy())}
    return out


def _frames(preset: Preset, count: int | None = None) -> np.ndarray:
    frames = np.stack(list(stress_frames(preset.input_size).values()))
    return np.ascontiguousarray(frames[:count])


class _Fused(torch.nn.Module):
    """FusedUniAD's preprocessing and model, with the option to stop at the features."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        from uniad_edge.model import FusedUniAD

        self.fused = FusedUniAD(model).eval()

    def forward(self, images: torch.Tensor, features_only: bool = False) -> Any:
        x = self.fused.preprocess(images)
        if features_only:
            return self.fused.model.features(x)
        return self.fused.model(x)


def _fused(model: torch.nn.Module) -> _Fused:
    """On the model's device: the wrapper builds its own preprocessing buffers (on the CPU)."""
    return _Fused(model).to(next(model.parameters()).device).eval()


def _map(fn: Callable[[torch.Tensor], Any], frames: np.ndarray, device: torch.device) -> np.ndarray:
    maps = []
    for start in range(0, len(frames), 8):
        chunk = torch.from_numpy(frames[start : start + 8]).to(device)
        with torch.inference_mode():
            maps.append(fn(chunk)[0].float().cpu().numpy())
    return np.concatenate(maps)


def fp16(all_presets: dict[str, Preset], device: torch.device, onnx_graph: bool) -> dict[str, Any]:
    """Per preset: map relative L2 of each float16 path against float32 (worst stress frame)."""
    return {name: _fp16_row(preset, device, onnx_graph) for name, preset in all_presets.items()}


def _fp16_row(preset: Preset, device: torch.device, onnx_graph: bool) -> dict[str, Any]:
    row: dict[str, Any] = {}
    model = kaiming_model(preset, device)
    frames, names = _frames(preset), list(stress_frames(preset.input_size))
    fused = _fused(model)
    reference = _map(fused, frames, device)

    def autocast(x: torch.Tensor) -> Any:
        with torch.autocast(device.type, dtype=torch.float16):
            return fused(x)

    def half_model(x: torch.Tensor) -> Any:
        """The whole network in half, the distance head in float32 (the --half arithmetic)."""
        features = model.features(fused.fused.preprocess(x).half())
        recon = model.reconstruction(features)
        return model.distance_head(features.float(), recon.float())

    for label, fn in (("autocast", autocast), ("half_model", half_model)):
        try:
            if label == "half_model":
                model.half()
            row[label] = _worst(reference, _map(fn, frames, device), names)
        except Exception as exc:  # noqa: BLE001 - e.g. half convolutions on a CPU
            row[label] = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            model.float()
    if onnx_graph:
        try:
            row["half_onnx_ort_cpu"] = _half_onnx(model.cpu(), frames, names)
        except Exception as exc:  # noqa: BLE001 - recorded: the export refused, and why
            row["half_onnx_ort_cpu"] = {"error": f"{type(exc).__name__}: {exc}"}
    return row


def _worst(reference: np.ndarray, candidate: np.ndarray, names: list[str]) -> dict[str, Any]:
    per_frame = [rel_l2(reference[i], candidate[i]) for i in range(len(names))]
    worst = int(np.argmax(per_frame))
    return {
        "finite": bool(np.isfinite(candidate).all()),
        "map_rel_l2_all": rel_l2(reference, candidate),
        "map_rel_l2_worst": per_frame[worst],
        "worst_frame": names[worst],
    }


def _half_onnx(model: torch.nn.Module, frames: np.ndarray, names: list[str]) -> dict[str, Any]:
    """What `export --half` does (one trace: range contract, escalation, drift check on the
    stress frames), then ORT CPU half vs float32 per stress frame."""
    from uniad_edge.export.fold import fold_constants
    from uniad_edge.export.fp16_range import half_within_contract, range_contract
    from uniad_edge.export.graph import trace_to_onnx
    from uniad_edge.export.verify import ort_session, run_ort_chunked, sample_frames
    from uniad_edge.model import FusedUniAD

    graph = fold_constants(trace_to_onnx(FusedUniAD(model).eval(), None, 17))
    check = sample_frames(model.preset, 2)
    stress = {name: frames[i : i + 1] for i, name in enumerate(names)}  # batches of one
    measured = range_contract(graph, np.concatenate([check, frames]), None)
    half, contract, _ = half_within_contract(graph, check, stress, None, measured)
    reference = run_ort_chunked(ort_session(graph.SerializeToString()), frames, None)[0]
    candidate = run_ort_chunked(ort_session(half.SerializeToString()), frames, None)[0]
    return {
        **_worst(reference, candidate, names),
        "fp32_nodes": len(contract.pinned),
        "safety_factor": 65504.0 / contract.limit,
        "closest_to_limit": measured.describe_closest(),
    }


def bench(all_presets: dict[str, Preset], device: torch.device, quick: bool) -> dict[str, Any]:
    """The torch rows of `bench`: ms per frame at batch 1/8/32, fp32 and fp16 (autocast)."""
    from uniad_edge.errors import UniadError
    from uniad_edge.model.torch_backend import TorchBackend

    batches = (1, 2) if quick else BATCHES
    out: dict[str, Any] = {}
    for name in [n for n in ("mvtec-224", "mvtec-512") if n in all_presets]:
        preset = all_presets[name]
        for precision in ("fp32", "fp16"):
            try:
                backend = TorchBackend(preset, precision)
            except UniadError as exc:  # fp16 drifting beyond HALF_LIMITS on the stress frames
                out.update({f"{name} {precision} b{b}": f"refused: {exc}" for b in batches})
                continue
            for batch in batches:
                frames = np.resize(_frames(preset), (batch, *preset.input_size, 3))
                times = _times(functools.partial(backend.infer, frames), 1 if quick else 5)
                out[f"{name} {precision} b{batch}"] = round(statistics.median(times) / batch, 3)
    return out


def _times(fn: Callable[[], Any], repeats: int) -> list[float]:
    fn()  # warm-up (cuDNN autotune, first-call allocations)
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        started = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append((time.perf_counter() - started) * 1000)
    return times


def tensorrt(all_presets: dict[str, Preset]) -> dict[str, Any]:
    """FP16 engine of the `--half` graph vs ORT CPU; two worker threads on one engine."""
    import tensorrt as trt  # noqa: F401 - only to skip quickly where it is missing

    from uniad_edge.export import export_onnx
    from uniad_edge.export.verify import ort_session, run_ort
    from uniad_edge.model import save_checkpoint
    from uniad_edge.runtime.backends.tensorrt_backend import TensorRTBackend
    from uniad_edge.trt import build_engine

    preset = next(iter(all_presets.values()))
    frames = _frames(preset, 4)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_checkpoint(Path(tmp) / "m.pth", kaiming_model(preset, torch.device("cpu")))
        onnx_path = export_onnx(ckpt, tmp, "half", half=True, verify_batches=(2,)).onnx_path
        reference = run_ort(ort_session(onnx_path.read_bytes()), frames)[0]
        engine = build_engine(onnx_path, Path(tmp) / "engines", precision="fp16", max_batch=4)
        results: list[Any] = [None, None]
        with TensorRTBackend(engine) as backend:

            def work(index: int) -> None:
                try:
                    results[index] = backend.infer(frames)[0]
                except Exception as exc:  # noqa: BLE001 - reported per thread
                    results[index] = exc

            threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    return {f"thread{i}": _thread_result(reference, r) for i, r in enumerate(results)}


def _thread_result(reference: np.ndarray, result: Any) -> float | str:
    if isinstance(result, Exception):
        return f"{type(result).__name__}: {result}"
    return rel_l2(reference, result)


def summary(results: dict[str, Any]) -> str:
    lines = [f"{'section':<10} {'preset / row':<26} value"]
    for name, value in results.items():
        if not isinstance(value, dict) or "error" in value:
            text = value.get("error") if isinstance(value, dict) else value
            lines.append(f"{name:<10} {'':<26} {text}")
            continue
        for key, item in value.items():
            lines.append(f"{name:<10} {key:<26} {_short(item)}")
    return "\n".join(lines)


def _short(item: Any) -> str:
    if isinstance(item, dict):
        parts = []
        for key, value in item.items():
            if isinstance(value, dict):
                worst = value.get("map_rel_l2_worst", value.get("error", ""))
                text = f"{worst:.2e}" if isinstance(worst, float) else str(worst)
                parts.append(f"{key}={text}")
            elif isinstance(value, float):
                parts.append(f"{key}={value:.2e}")
            else:
                parts.append(f"{key}={value}")
        return ", ".join(parts)
    return f"{item:.3g}" if isinstance(item, float) else str(item)


SECTIONS = ("environment", "parity", "fp16", "bench", "tensorrt")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu.json"))
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    parser.add_argument("--quick", action="store_true", help="64 px presets, few repeats")
    parser.add_argument("--no-onnx", action="store_true", help="skip the --half ONNX graphs")
    parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), help="default: all")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, help="default: all")
    args = parser.parse_args(argv)
    wanted = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = torch.device("cpu" if wanted == "auto" else wanted)
    chosen = {k: v for k, v in presets(args.quick).items() if k in (args.presets or PRESETS)}
    results: dict[str, Any] = {"quick": args.quick}
    sections: dict[str, Callable[[], Any]] = {
        "environment": lambda: environment(device),
        "parity": lambda: parity(chosen, device),
        "fp16": lambda: fp16(chosen, device, not args.no_onnx),
        "bench": lambda: bench(chosen, device, args.quick),
        "tensorrt": lambda: tensorrt(chosen),
    }
    for name, fn in sections.items():
        if name not in (args.sections or SECTIONS):
            continue
        print(f"== {name}", flush=True)
        section(results, name, fn)
        # after every section: a run stopped by a time limit keeps what it measured
        args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(summary(results))
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
