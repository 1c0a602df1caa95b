"""Every inference backend in one table: which artifacts it takes, how to construct it, and the
precisions it runs. `load_backend`, `Detector`, `uniad-edge run` and `bench` all read it.

Torch-free: a row names its class through a small factory function that imports the backend's
module inside it, so nothing is imported until that backend is asked for, and import graphs and
linters still see every edge.

PyTorch eager is the one backend whose code lives above the runtime (`uniad_edge.model`, which
the runtime never imports, not even inside a function). Its row is declared torch-free in
`uniad_edge.backends` and joins this table through `register`, which the layers allowed to reach
the model call before they open models: the CLI, `bench`, `calibrate` and
`uniad_edge.Detector`. The table stays the one list every reader uses; the runtime alone
(`uniad_edge.runtime.detector.Detector` imported directly) opens exported models only.

Adding a backend is one `BackendSpec` entry in `BACKENDS` plus its own module holding a
`Backend` subclass whose constructor takes the artifact first and the keyword options listed in
`options` (a subset of `OPTIONS`). Its `artifact` is a kind of `uniad_edge.artifacts.KINDS`
(whose suffixes and URL schemes say what a path is); `backend="auto"` picks the first `auto`
backend of the path's kind, and a backend with `auto=False` (ONNX Runtime's TensorRT EP on an
`.onnx`) is used only when named.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...artifacts import KINDS, describe_kinds, kind_of, url_scheme
from ...errors import UniadError
from ...metadata import PRECISIONS
from .base import Backend

AUTO = "auto"
OPTIONS = ("providers", "threads", "precision")
"""Keyword options `load_backend` forwards to a constructor that lists them in `options`."""
BackendFactory = Callable[[], type[Backend]]
"""Imports a backend's module (inside the function) and returns its class."""


@dataclass(frozen=True)
class BackendSpec:
    """One row of the table. `factory` returns the class, importing its module only then;
    `artifact` is the kind it loads (a key of `artifacts.KINDS`), so `bench` knows what to
    prepare for it; `auto` says whether `backend="auto"` may pick it; `unavailable` is the
    one-line error when its module fails to import ({path}, {exc})."""

    name: str
    factory: BackendFactory
    artifact: str
    description: str
    auto: bool = True
    precisions: tuple[str, ...] = PRECISIONS
    options: tuple[str, ...] = ()
    unavailable: str = "cannot open {path}: backend unavailable ({exc})"

    def __post_init__(self) -> None:
        unknown = set(self.options) - set(OPTIONS)
        if unknown:
            raise ValueError(f"backend {self.name!r}: options must be of {OPTIONS}, not {unknown}")

    def accepts(self, model: str | Path, explicit: bool) -> bool:
        """Whether this backend takes `model` (by its kind), picked by "auto" or named."""
        kind = kind_of(model)
        return kind is not None and kind.name == self.artifact and (explicit or self.auto)

    def load_class(self, path: str | Path) -> type[Backend]:
        """Import the backend's class now, or a one-line error saying what to install."""
        try:
            return self.factory()
        except ImportError as exc:
            raise UniadError(self.unavailable.format(path=path, exc=exc)) from None


def _onnxruntime() -> type[Backend]:
    from .onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend


def _ort_tensorrt() -> type[Backend]:
    from .ort_tensorrt_backend import OrtTensorRTBackend

    return OrtTensorRTBackend


def _tensorrt() -> type[Backend]:
    from .tensorrt_backend import TensorRTBackend

    return TensorRTBackend


def _triton() -> type[Backend]:
    from .triton_backend import TritonBackend

    return TritonBackend


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec(
            "onnxruntime",
            _onnxruntime,
            "onnx",
            "ONNX Runtime (CPU by default; CUDA/TensorRT EPs with --providers)",
            options=("providers", "threads"),
        ),
        BackendSpec(
            "ort-tensorrt",
            _ort_tensorrt,
            "onnx",
            "ONNX Runtime's TensorRT EP: float32, engines per model sha256 in engines/ort-trt",
            auto=False,
            options=("threads",),
        ),
        BackendSpec(
            "tensorrt",
            _tensorrt,
            "engine",
            "native TensorRT engine (NVIDIA GPU, Jetson)",
            unavailable=(
                "cannot run engine {path}: the TensorRT backend failed to import ({exc}); install "
                "`uniad-edge[tensorrt]` or run the ONNX model instead (--model export/model.onnx)"
            ),
        ),
        BackendSpec(
            "triton",
            _triton,
            "url",
            "Triton Inference Server client (grpc:// or http:// URL of a served model)",
        ),
    )
}


def register(spec: BackendSpec) -> None:
    """Add a row whose code lives above the runtime (`uniad_edge.backends`); registering the
    same row again changes nothing, another row under a taken name is refused."""
    known = BACKENDS.setdefault(spec.name, spec)
    if known != spec:
        raise ValueError(f"backend {spec.name!r} is already registered")


def names() -> tuple[str, ...]:
    """Every value `backend=` accepts, "auto" first."""
    return (AUTO, *BACKENDS)


def describe() -> str:
    """One line naming every backend and what it is, for `--help`."""
    return "; ".join(f"{spec.name}: {spec.description}" for spec in BACKENDS.values())


def get_spec(name: str) -> BackendSpec:
    if name not in BACKENDS:
        raise UniadError(f"unknown backend {name!r}; choose one of: {', '.join(names())}")
    return BACKENDS[name]


def resolve(model: str | Path, backend: str | None = AUTO) -> str:
    """The backend name that `load_backend` would use for `model` (a file or a URL); None is
    "auto", so a CLI option left unset passes straight through."""
    if backend not in (None, AUTO):
        spec = get_spec(backend)
        if not spec.accepts(model, explicit=True):
            raise UniadError(
                f"backend {backend!r} takes {describe_kinds([spec.artifact])}, not {model}"
            )
        return backend
    for spec in BACKENDS.values():
        if spec.accepts(model, explicit=False):
            return spec.name
    kind = kind_of(model)
    if kind is not None:  # a checkpoint where no layer above the runtime registered torch
        raise UniadError(
            f"no backend here opens a {kind.description} ({model}); run its exported .onnx, "
            "or open it through `uniad-edge` or `uniad_edge.Detector`, which add PyTorch eager"
        )
    auto = {spec.artifact for spec in BACKENDS.values() if spec.auto}
    kinds = [name for name in KINDS if name in auto]  # the kinds' order, however rows joined
    what = "URL scheme" if url_scheme(model) else "suffix"
    raise UniadError(
        f"cannot tell the backend of {model} from its {what}; use {describe_kinds(kinds)}"
    )


def construct(name: str, source: Any, **options: Any) -> Backend:
    """Build backend `name` on `source` (a path, URL, or what its constructor takes, such as a
    Preset for torch), passing only the options it declares and that are not None."""
    spec = get_spec(name)
    precision = options.get("precision")
    if precision is not None and precision not in spec.precisions:
        raise UniadError(
            f"backend {name!r} runs {', '.join(spec.precisions)}, not precision {precision!r}"
        )
    kwargs = {k: v for k, v in options.items() if k in spec.options and v is not None}
    return spec.load_class(source)(source, **kwargs)


def load_backend(
    model: str | Path,
    backend: str | None = AUTO,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    precision: str | None = None,
) -> Backend:
    """Open `model` with the backend its suffix or URL scheme names (or `backend`); one-line
    errors for a missing file, an unknown backend or one that cannot import here."""
    name = resolve(model, backend)
    if url_scheme(model) is None:
        model = Path(model)
        if not model.is_file():
            raise UniadError(f"model {model} not found; run `uniad-edge export` to create it")
    return construct(name, model, providers=providers, threads=threads, precision=precision)
