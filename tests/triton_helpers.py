"""A real `tritonserver` on 127.0.0.1 for tests and benchmarks: the binary (and its Python
backend) that the nvidia-pytriton wheel ships, serving a repository written by
`uniad-edge export --format triton --triton-backend python`.

The wheel's Python package is never imported (it pins numpy<2); only its files are used. The
Python-backend stub matching this interpreter links libpython dynamically, so this interpreter's
LIBDIR goes on LD_LIBRARY_PATH and its sys.path on PYTHONPATH (numpy, onnxruntime for model.py).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ports import free_ports


class ServerUnavailable(Exception):
    """Why no tritonserver can run here (the tests skip with this reason)."""


@dataclass(frozen=True)
class TritonInstall:
    binary: Path
    libs: Path
    python_backend: Path
    stub: Path


def find_tritonserver() -> TritonInstall:
    """The files of nvidia-pytriton's bundled server, or ServerUnavailable naming what lacks."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise ServerUnavailable(
            "nvidia-pytriton is not installed (`pip install --no-deps nvidia-pytriton`); it ships "
            "the tritonserver binary"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    install = TritonInstall(
        binary=root / "bin" / "tritonserver",
        libs=root.parent.parent / "nvidia_pytriton.libs",
        python_backend=root / "backends" / "python",
        stub=root / "python_backend_stubs" / version / "triton_python_backend_stub",
    )
    missing = [str(p) for p in vars(install).values() if not p.exists()]
    if missing:
        raise ServerUnavailable(f"nvidia-pytriton install lacks {', '.join(missing)}")
    return install


def missing_libraries(binary: Path, env: dict[str, str]) -> list[str]:
    """Shared libraries `binary` needs that the loader cannot find (e.g. a static-only Python
    has no libpython for the Python-backend stub)."""
    try:
        out = subprocess.run(
            ["ldd", str(binary)], capture_output=True, text=True, env=env, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split()[0] for line in out.splitlines() if "not found" in line]


@dataclass
class TritonServer:
    """One tritonserver process on free loopback ports; `restart` keeps the ports."""

    repository: Path
    workdir: Path
    ports: list[int] = field(default_factory=lambda: free_ports(2))
    startup_s: float = 0.0
    process: subprocess.Popen[bytes] | None = None

    @property
    def http_port(self) -> int:
        return self.ports[0]

    @property
    def grpc_port(self) -> int:
        return self.ports[1]

    @property
    def log_path(self) -> Path:
        return self.workdir / "tritonserver.log"

    def url(self, model: str, scheme: str = "grpc") -> str:
        port = self.grpc_port if scheme == "grpc" else self.http_port
        return f"{scheme}://127.0.0.1:{port}/{model}"

    def _backend_dir(self, install: TritonInstall) -> Path:
        """backends/python with the stub for this Python beside the backend library."""
        python = self.workdir / "backends" / "python"
        python.mkdir(parents=True, exist_ok=True)
        links = {
            "libtriton_python.so": install.python_backend / "libtriton_python.so",
            "triton_python_backend_utils.py": (
                install.python_backend / "triton_python_backend_utils.py"
            ),
            "triton_python_backend_stub": install.stub,
        }
        for name, target in links.items():
            link = python / name
            if not link.exists():
                link.symlink_to(target)
        return python.parent

    def _environment(self, install: TritonInstall) -> dict[str, str]:
        env = dict(os.environ)
        libdirs = [sysconfig.get_config_var("LIBDIR") or "", str(install.libs)]
        old = env.get("LD_LIBRARY_PATH", "")
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in [*libdirs, old] if p)
        paths = [p for p in sys.path if p and Path(p).is_dir()]
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
        return env

    def start(self, timeout: float = 90.0) -> None:
        """Start and wait until every model is ready, else ServerUnavailable with the log's
        first error line."""
        install = find_tritonserver()
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = self._environment(install)
        missing = missing_libraries(install.stub, env)
        if missing:
            raise ServerUnavailable(
                f"the Python-backend stub cannot load {', '.join(missing)} (this Python was "
                "built without a shared libpython?)"
            )
        command = [
            str(install.binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={self._backend_dir(install)}",
            "--http-address=127.0.0.1",
            f"--http-port={self.http_port}",
            "--grpc-address=127.0.0.1",
            f"--grpc-port={self.grpc_port}",
            "--allow-metrics=false",
            "--allow-gpu-metrics=false",
            "--exit-timeout-secs=5",
            "--strict-readiness=true",
        ]
        started = time.perf_counter()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        ready = f"http://127.0.0.1:{self.http_port}/v2/health/ready"
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                self.process = None
                raise ServerUnavailable(f"tritonserver exited at start: {self.first_error()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(ready, timeout=1) as reply:
                if reply.status == 200:
                    self.startup_s = time.perf_counter() - started
                    return
            time.sleep(0.1)
        self.stop()
        reason = self.first_error()
        raise ServerUnavailable(f"tritonserver not ready after {timeout:.0f} s: {reason}")

    def first_error(self) -> str:
        """The first error line of the server log (what a skip reason should quote)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        for line in lines:
            text = line.strip()
            errorish = text.startswith("E") or "error" in text.lower() or "UNAVAILABLE" in text
            if errorish and "CudaDriverHelper" not in text:  # harmless without a GPU
                return text[:300]
        return lines[-1][:300] if lines else "empty log"

    def stop(self) -> None:
        """SIGTERM (Triton unloads models and frees its shared memory), SIGKILL after 20 s."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


def start_server(repository: Path, workdir: Path, tries: int = 3) -> TritonServer:
    """A started server on free ports; ports taken by another process between choosing and
    binding ("address in use" in its log) are chosen again."""
    for attempt in range(tries):
        server = TritonServer(repository, workdir)
        try:
            server.start()
            return server
        except ServerUnavailable as exc:
            if attempt + 1 == tries or "in use" not in str(exc).lower():
                raise
    raise AssertionError("unreachable")
