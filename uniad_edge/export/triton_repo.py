"""`--format triton`: a Triton Inference Server model repository for the fused graph.

    <out>/<name>/config.pbtxt          platform, shapes, batching, instances, metadata parameters
    <out>/<name>/<version>/model.onnx  (onnxruntime_onnx), or model.plan (tensorrt_plan), or
                                       model.onnx + model.py (python backend running ONNX Runtime)

The model's metadata (the same JSON as the ONNX `uniad_edge` property) rides in the config's
`parameters`, so a Triton client needs nothing but the server. The text is written by hand (no
tritonclient needed to export); the tests parse it with Triton's own model_config protobuf.
A version folder is assembled under a temporary name and renamed into place; an existing one is
replaced only with `force`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..artifacts import ENGINE, ONNX, is_kind, open_artifact, require_kind
from ..errors import UniadError
from ..fileio import write_bytes_atomic
from ..metadata import INPUT_NAME, METADATA_KEY, OUTPUT_MAP, OUTPUT_SCORE, ModelMetadata
from .options import KINDS, ExportOptions, TritonOptions
from .options import TRITON_BACKENDS as BACKENDS
from .output import FormatOutput

if TYPE_CHECKING:
    from .pipeline import ExportResult

PLATFORMS = {"onnxruntime": "onnxruntime_onnx", "tensorrt": "tensorrt_plan"}
MODEL_FILES = {"onnxruntime": "model.onnx", "python": "model.onnx", "tensorrt": "model.plan"}
PYTHON_MODEL = Path(__file__).with_name("triton_python_model.py")
THREADS_PARAMETER = "ort_intra_op_threads"


@dataclass
class TritonRepository:
    """What was written: the repository root, the model's config and its version folder."""

    root: Path
    config_path: Path
    version_dir: Path
    model_path: Path
    metadata: ModelMetadata
    options: TritonOptions
    files: list[Path] = field(default_factory=list)


def check_options(options: TritonOptions, artifact: Path) -> TritonOptions:
    """One-line errors for options that no Triton server would accept; the backend follows the
    artifact (an engine can only be `tensorrt`)."""
    backend = options.backend.lower()
    if is_kind(artifact, ENGINE):
        if backend not in ("onnxruntime", "tensorrt"):
            raise UniadError(f"{artifact} is a TensorRT engine; --triton-backend must be tensorrt")
        backend = "tensorrt"
    elif backend == "tensorrt":
        raise UniadError(
            f"--triton-backend tensorrt needs an engine (.engine/.plan), not {artifact}"
        )
    if backend not in BACKENDS:
        choices = ", ".join(BACKENDS)
        raise UniadError(f"--triton-backend {options.backend!r} is not one of {choices}")
    if options.version < 1:
        raise UniadError(f"Triton model version must be >= 1, got {options.version}")
    if options.max_batch_size < 1:
        raise UniadError(f"--max-batch must be >= 1, got {options.max_batch_size}")
    too_big = [b for b in options.preferred_batch_sizes if not 1 <= b <= options.max_batch_size]
    if too_big:
        raise UniadError(
            f"preferred batch sizes {too_big} must lie in 1..{options.max_batch_size} (--max-batch)"
        )
    if options.max_queue_delay_us < 0 or options.instance_count < 1:
        raise UniadError("max queue delay must be >= 0 us and the instance count >= 1")
    if (options.instance_kind or "gpu").lower() not in KINDS:
        raise UniadError(f"instance kind {options.instance_kind!r} is not one of gpu, cpu")
    if options.ort_trt_fp16 and backend != "onnxruntime":
        raise UniadError("--ort-trt-fp16 applies to the onnxruntime backend only")
    return replace(options, backend=backend)


def pbtxt_string(text: str) -> str:
    """A protobuf text-format string literal: quotes, backslashes and non-ASCII as escapes."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def metadata_parameters(metadata: ModelMetadata) -> dict[str, str]:
    """The config `parameters`: the full metadata JSON under `uniad_edge` (what clients read),
    plus the headline fields as their own keys for people reading the config."""
    thresholds = metadata.thresholds
    return {
        METADATA_KEY: metadata.to_json(),
        "preset": metadata.preset,
        "input_size": "x".join(str(v) for v in metadata.input_size),
        "class_names": ",".join(metadata.class_names),
        "threshold": "" if thresholds.global_ is None else repr(thresholds.global_),
        "threshold_rule": thresholds.rule,
        "precision": metadata.precision,
        "versions": json.dumps(metadata.versions, sort_keys=True),
    }


def _dims(values: tuple[int, ...] | list[int]) -> str:
    return "[ " + ", ".join(str(v) for v in values) + " ]"


def _accelerator_precision(metadata: ModelMetadata) -> str:
    """The TensorRT accelerator's one `precision_mode`: INT8 for a Q/DQ export (TensorRT
    refuses Q/DQ layers without its INT8 flag and reads the scales from the graph, so no
    calibration table), FP16 otherwise."""
    return "INT8" if metadata.precision == "int8" else "FP16"


def config_text(metadata: ModelMetadata, options: TritonOptions) -> str:
    """config.pbtxt for the fused graph: uint8 [H, W, 3] in, float32 [H, W] map and scalar score
    out (dims [1] reshaped to [], Triton's form for a [batch] output)."""
    h, w = metadata.input_size
    fh, fw = metadata.graph_input_size  # whole camera frames with `--frame-size`
    lines = [f"name: {pbtxt_string(options.name)}"]
    if options.backend == "python":
        lines.append('backend: "python"')
    else:
        lines.append(f'platform: "{PLATFORMS[options.backend]}"')
    preferred = ", ".join(str(b) for b in options.preferred_batch_sizes)
    lines += [
        f"max_batch_size: {options.max_batch_size}",
        "input [",
        f'  {{ name: "{INPUT_NAME}" data_type: TYPE_UINT8 dims: {_dims((fh, fw, 3))} }}',
        "]",
        "output [",
        f'  {{ name: "{OUTPUT_MAP}" data_type: TYPE_FP32 dims: {_dims((h, w))} }},',
        f'  {{ name: "{OUTPUT_SCORE}" data_type: TYPE_FP32 dims: [ 1 ]'
        " reshape: { shape: [ ] } }",
        "]",
        "dynamic_batching {",
        f"  preferred_batch_size: [ {preferred} ]",
        f"  max_queue_delay_microseconds: {options.max_queue_delay_us}",
        "}",
        f"instance_group [ {{ count: {options.instance_count} kind: {options.kind} }} ]",
    ]
    if options.ort_trt_fp16:
        workspace = int(options.ort_trt_workspace_gib * 2**30)
        lines += [
            "optimization { execution_accelerators { gpu_execution_accelerator: [ {",
            '  name: "tensorrt"',
            f'  parameters {{ key: "precision_mode" value: "{_accelerator_precision(metadata)}" }}',
            f'  parameters {{ key: "max_workspace_size_bytes" value: "{workspace}" }}',
            "} ] } }",
        ]
    parameters = metadata_parameters(metadata)
    if options.backend == "python" and options.ort_threads:
        parameters[THREADS_PARAMETER] = str(options.ort_threads)
    for key, value in parameters.items():
        lines.append(
            f"parameters {{ key: {pbtxt_string(key)} "
            f"value: {{ string_value: {pbtxt_string(value)} }} }}"
        )
    return "\n".join(lines) + "\n"


def read_artifact_metadata(artifact: Path) -> ModelMetadata:
    """The metadata of an exported ONNX (embedded, else its sidecar) or an engine (sidecar),
    checked against the fused-graph contract Triton's config will declare."""
    require_kind(artifact, (ONNX, ENGINE), "serve with Triton")
    opened = open_artifact(artifact)
    if opened.kind.name == ONNX:
        _check_fused_graph(artifact)
    assert opened.metadata is not None
    return opened.metadata


def _check_fused_graph(path: Path) -> None:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types for a bad file
        raise UniadError(
            f"cannot read ONNX model {path}: {exc}; re-run `uniad-edge export`"
        ) from None
    graph = model.graph
    inputs = {i.name: i.type.tensor_type for i in graph.input}
    outputs = {o.name for o in graph.output}
    image = inputs.get(INPUT_NAME)
    if (
        image is None
        or image.elem_type != onnx.TensorProto.UINT8
        or {
            OUTPUT_MAP,
            OUTPUT_SCORE,
        }
        - outputs
    ):
        raise UniadError(
            f"{path} is not a fused uniad-edge graph (uint8 '{INPUT_NAME}' in, "
            f"'{OUTPUT_MAP}' and '{OUTPUT_SCORE}' out); re-run `uniad-edge export`"
        )
    batch = image.shape.dim[0]
    if batch.HasField("dim_value"):
        raise UniadError(
            f"{path} has a static batch of {batch.dim_value}; Triton batches requests itself, "
            "export with a dynamic batch (omit --batch)"
        )


def export_triton(
    artifact: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    options: TritonOptions | None = None,
    *,
    move: bool = False,
) -> TritonRepository:
    """Write `out_dir/<name>/config.pbtxt` and `out_dir/<name>/<version>/` from an exported
    ONNX (or a TensorRT engine, tied to its GPU and TensorRT version like any engine); `move`
    deletes the artifact once the repository holds its copy."""
    artifact = Path(artifact)
    options = check_options(options or TritonOptions(), artifact)
    metadata = read_artifact_metadata(artifact)
    if metadata.batch is not None:
        raise UniadError(
            f"{artifact} has a static batch of {metadata.batch}; Triton batches requests itself, "
            "export with a dynamic batch (omit --batch)"
        )
    _check_engine_profile(artifact, options.max_batch_size)
    root = Path(out_dir)
    model_dir = root / options.name
    version_dir = model_dir / str(options.version)
    _refuse_existing_version(version_dir, options.force)
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{options.version}.", dir=model_dir))
    except OSError as exc:
        raise UniadError(f"cannot write to {model_dir}: {exc.strerror or exc}") from None
    try:
        staging.chmod(0o755)
        model_file = staging / MODEL_FILES[options.backend]
        shutil.copyfile(artifact, model_file)  # a copy first: a failed swap leaves `artifact`
        if options.backend == "python":
            shutil.copyfile(PYTHON_MODEL, staging / "model.py")
        files = sorted(p.name for p in staging.iterdir())
        _swap_into_place(staging, version_dir)
        if move:
            artifact.unlink()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    config_path = model_dir / "config.pbtxt"
    write_bytes_atomic(config_path, config_text(metadata, options).encode())
    return TritonRepository(
        root,
        config_path,
        version_dir,
        version_dir / MODEL_FILES[options.backend],
        metadata,
        options,
        [config_path, *(version_dir / name for name in files)],
    )


def _refuse_existing_version(version_dir: Path, force: bool) -> None:
    if version_dir.exists() and not force:
        raise UniadError(
            f"{version_dir} already exists; pass --force to replace it or --version N for a new one"
        )


def _check_engine_profile(artifact: Path, max_batch_size: int) -> None:
    """An engine serves only the batches of its optimisation profile (recorded in its sidecar
    by `uniad-edge export`): Triton must send from 1 up to at most its maximum."""
    from ..trt.sidecar import Profile

    opened = open_artifact(artifact)
    if opened.kind.name != ENGINE or opened.build is None:
        return  # a sidecar without a build section: Triton checks the plan when it loads it
    try:
        profile = Profile.from_dict(opened.build["profile"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UniadError(
            f"{artifact}: the engine section of its sidecar has no valid batch profile ({exc}); "
            "rebuild the engine with `uniad-edge export --format engine`"
        ) from None
    low, high = profile.min_batch, profile.max_batch
    if low > 1 or max_batch_size > high:
        raise UniadError(
            f"{artifact} was built for batches {low}..{high} but Triton sends 1..{max_batch_size};"
            f" rebuild the engine with min batch 1 or pass --max-batch {high}"
        )


def _swap_into_place(staging: Path, version_dir: Path) -> None:
    """Rename the finished folder into place; an old one (--force) is moved aside first and
    deleted only once the new one is in."""
    old = None
    if version_dir.exists():
        old = version_dir.with_name(f".{version_dir.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        version_dir.rename(old)
    try:
        staging.rename(version_dir)
    except OSError:
        if old is not None:
            old.rename(version_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _repository_options(options: ExportOptions) -> TritonOptions:
    """The Triton options `export()` applies: ExportOptions' name, max batch and workspace win."""
    return options.triton.with_overrides(
        name=options.name,
        max_batch_size=options.max_batch,
        ort_trt_workspace_gib=options.workspace_gib,
    )


def check_repository(options: ExportOptions) -> None:
    """Format `triton`'s pre-flight check: an existing version without --force is refused
    before the export spends its time tracing and verifying."""
    triton = _repository_options(options)
    _refuse_existing_version(Path(options.out) / triton.name / str(triton.version), triton.force)


def repository_step(result: ExportResult, options: ExportOptions) -> FormatOutput:
    """Format `triton`: the verified ONNX just written to `options.out` moves into the
    repository there (the JSON sidecar's content is in the config), or, for the tensorrt
    backend, the FP16 engine built from it is packaged. `result` is updated to point at the
    files as they now lie, so the export summary names them."""
    from .engine import export_engine

    triton = _repository_options(options)
    loose = [result.onnx_path, result.sidecar_path]
    try:
        if triton.backend.lower() == "tensorrt":
            options.report(f"TensorRT {options.engine_precision.upper()} engine for model.plan")
            engine = export_engine(result.onnx_path, True, options)
            assert engine.path is not None  # required=True raises instead
            repository = export_triton(engine.path, options.out, triton)
        else:
            options.report(f"writing the Triton model repository in {options.out}")
            repository = export_triton(result.onnx_path, options.out, triton, move=True)
            result.onnx_path = repository.model_path
    finally:
        for path in loose:
            path.unlink(missing_ok=True)
    result.sidecar_path = repository.config_path
    return FormatOutput(f"triton model {triton.name} v{triton.version}", repository.version_dir)
