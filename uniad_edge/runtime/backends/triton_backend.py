"""Triton Inference Server backend: `Detector("grpc://host:8001/uniad")` scores on a shared server.

The URL names everything: `grpc://` or `http://`, host and port, the model, optionally its
version (`/uniad/2`) and query options (`?timeout=5&retries=2`, see `TritonSettings`). Metadata
and thresholds come from the server's model config (`parameters`, written by
`uniad-edge export --format triton`), so a station needs no local model file. A batch goes as one
request (split only above the server's max_batch_size). A dropped connection is re-opened and the
request retried; what still fails is one `UniadError` line. tritonclient is imported here only,
when such a URL is opened (`pip install "uniad-edge[triton]"`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from ...artifacts import parse_metadata
from ...errors import UniadError
from ...metadata import INPUT_NAME, METADATA_KEY, OUTPUT_MAP, OUTPUT_SCORE, ModelMetadata
from ...redact import redact_url
from .base import Backend

SCHEMES = ("grpc", "http")
DEFAULT_PORTS = {"grpc": 8001, "http": 8000}
GRPC_CHANNEL = [
    ("grpc.max_send_message_length", 2**31 - 1),  # tritonclient's own limits
    ("grpc.max_receive_message_length", 2**31 - 1),
    # A reconnect must dial now: gRPC otherwise shares one subchannel (and its backoff of up to
    # two minutes after a server restart) between every channel to the same address.
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


@dataclass(frozen=True)
class TritonSettings:
    """Connection settings; each is also a URL query key (`?timeout=2.5&retries=0`).

    timeout: seconds per request (and for connecting); retries: re-connect-and-resend attempts
    after a connection failure; retry_delay: seconds before each; version: "" for the newest."""

    timeout: float = 10.0
    retries: int = 2
    retry_delay: float = 0.5
    version: str = ""


@dataclass(frozen=True)
class TritonTarget:
    """A parsed `grpc://host:port/model[/version]` URL."""

    url: str
    scheme: str
    address: str
    model: str
    settings: TritonSettings


def parse_url(url: str, settings: TritonSettings | None = None) -> TritonTarget:
    """Split a Triton URL into what the client needs, with one-line errors for a bad one (the
    target's `url` is for messages: its credentials are `***`)."""
    parts = urlsplit(url)
    url = redact_url(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UniadError(f"{url}: a Triton model URL starts with grpc:// or http://")
    path = [p for p in parts.path.split("/") if p]
    if not parts.hostname or not 1 <= len(path) <= 2:
        raise UniadError(
            f"{url}: expected {scheme}://HOST[:PORT]/MODEL[/VERSION], e.g. "
            f"{scheme}://127.0.0.1:{DEFAULT_PORTS[scheme]}/uniad"
        )
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise UniadError(f"{url}: the port is not a number") from None
    settings = settings or TritonSettings()
    types = {f.name: type(getattr(settings, f.name)) for f in fields(settings)}
    values: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in types:
            raise UniadError(f"{url}: unknown option {key!r}; known: {', '.join(types)}")
        try:
            values[key] = types[key](value)
        except ValueError:
            kind = types[key].__name__
            raise UniadError(f"{url}: option {key}={value!r} is not a {kind}") from None
    if len(path) == 2:
        values["version"] = path[1]
    settings = replace(settings, **values)
    if settings.timeout <= 0 or settings.retries < 0 or settings.retry_delay < 0:
        raise UniadError(f"{url}: timeout must be > 0, retries and retry_delay >= 0")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return TritonTarget(url, scheme, f"{host}:{port}", path[0], settings)


class TritonBackend(Backend):
    """A tritonclient (gRPC or HTTP) bound to one model on one server."""

    name = "triton"

    def __init__(self, url: str, settings: TritonSettings | None = None) -> None:
        self.target = parse_url(str(url), settings)
        self._lock = threading.Lock()
        self._client: Any = None
        self._connect()
        try:
            config = self._model_config()
            super().__init__(self._read_metadata(config))
            self.max_batch_size = int(config.get("max_batch_size") or 0)
            self._check_signature(config)
        except BaseException:
            self.close()
            raise
        kinds = {g.get("kind", "") for g in config.get("instance_group") or []}
        self._device = "cuda" if "KIND_GPU" in kinds else "cpu"

    @property
    def device_type(self) -> str:
        """Where the server computes: "cuda" when its model has GPU instances."""
        return self._device

    # -- connection ---------------------------------------------------------------------------

    def _module(self) -> Any:
        try:
            if self.target.scheme == "grpc":
                import tritonclient.grpc as module
            else:
                import tritonclient.http as module
        except ImportError as exc:
            raise UniadError(
                f"cannot open {self.target.url}: tritonclient is not installed ({exc}); "
                'pip install "uniad-edge[triton]"'
            ) from None
        return module

    def _connect(self) -> None:
        """A fresh client, checked live and the model ready (one line naming the fix if not)."""
        module = self._module()
        timeout = self.target.settings.timeout
        if self.target.scheme == "grpc":
            client = module.InferenceServerClient(self.target.address, channel_args=GRPC_CHANNEL)
        else:
            client = module.InferenceServerClient(
                self.target.address, connection_timeout=timeout, network_timeout=timeout
            )
        try:
            live = client.is_server_live(**self._timeout_kwargs())
            ready = live and client.is_model_ready(
                self.target.model, self.target.settings.version, **self._timeout_kwargs()
            )
        except Exception as exc:  # noqa: BLE001 - gRPC, HTTP and socket errors alike
            self._close_client(client)
            raise UniadError(
                f"Triton server at {self.target.url} is not reachable ({_first_line(exc)}); "
                "start it (tritonserver --model-repository ...) or fix the host/port in --model"
            ) from None
        if not ready:
            names = self._model_names(client)
            self._close_client(client)
            version = self.target.settings.version
            what = f"model {self.target.model!r}" + (f" version {version}" if version else "")
            raise UniadError(
                f"{what} is not ready on the Triton server at {self.target.address} (ready: "
                f"{', '.join(names) or 'none'}); check the name in --model and the server log"
            )
        self._close_client(self._client)
        self._client = client

    def _timeout_kwargs(self) -> dict[str, float]:
        """gRPC takes a deadline per call; HTTP's timeouts were set on the client."""
        return {"client_timeout": self.target.settings.timeout} if self._is_grpc else {}

    @property
    def _is_grpc(self) -> bool:
        return self.target.scheme == "grpc"

    def _model_names(self, client: Any) -> list[str]:
        try:
            index = client.get_model_repository_index(**self._index_kwargs())
        except Exception:  # noqa: BLE001 - only used to enrich an error message
            return []
        if self._is_grpc:
            entries = [(m.name, m.state) for m in index.models]
        else:
            entries = [(m.get("name", ""), m.get("state", "")) for m in index]
        return sorted({name for name, state in entries if state == "READY"})

    def _index_kwargs(self) -> dict[str, Any]:
        return {"as_json": False, **self._timeout_kwargs()} if self._is_grpc else {}

    @staticmethod
    def _close_client(client: Any) -> None:
        if client is not None:
            with contextlib.suppress(Exception):  # a dead connection may fail to close
                client.close()

    # -- model description --------------------------------------------------------------------

    def _model_config(self) -> dict[str, Any]:
        version = self.target.settings.version
        try:
            if self._is_grpc:
                reply = self._client.get_model_config(
                    self.target.model, version, as_json=True, **self._timeout_kwargs()
                )
                return reply.get("config", reply)
            return self._client.get_model_config(self.target.model, version)
        except Exception as exc:  # noqa: BLE001
            raise UniadError(
                f"cannot read the model config of {self.target.url}: {_first_line(exc)}"
            ) from None

    def _read_metadata(self, config: dict[str, Any]) -> ModelMetadata:
        value = (config.get("parameters") or {}).get(METADATA_KEY) or {}
        text = value.get("string_value") if isinstance(value, dict) else None
        if not text:
            raise UniadError(
                f"model {self.target.model!r} on {self.target.address} has no '{METADATA_KEY}' "
                "parameter in its config; serve a repository written by "
                "`uniad-edge export --format triton`"
            )
        return parse_metadata(text, f"the config of {self.target.url}")

    def _check_signature(self, config: dict[str, Any]) -> None:
        """Refuse a served model whose tensors differ from the metadata, before any frame."""
        h, w = self.metadata.graph_input_size
        inputs = {i.get("name"): i for i in config.get("input") or []}
        outputs = {o.get("name") for o in config.get("output") or []}
        image = inputs.get(INPUT_NAME, {})
        dims = [int(d) for d in image.get("dims") or []]
        batched = self.max_batch_size > 0
        expected = [h, w, 3] if batched else [-1, h, w, 3]
        if image.get("data_type") != "TYPE_UINT8" or {OUTPUT_MAP, OUTPUT_SCORE} - outputs:
            raise UniadError(
                f"model {self.target.model!r} on {self.target.address} is not a fused uniad-edge "
                f"graph (uint8 '{INPUT_NAME}' in, '{OUTPUT_MAP}' and '{OUTPUT_SCORE}' out)"
            )
        if dims[-3:] != expected[-3:]:
            raise UniadError(
                f"model {self.target.model!r} on {self.target.address} takes {dims} but its "
                f"metadata says {h}x{w}; re-export the repository"
            )

    # -- inference ----------------------------------------------------------------------------

    def infer(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One request per batch (chunks of the server's max_batch_size when larger)."""
        step = self.max_batch_size or len(images)
        if len(images) <= step:
            return self._infer_with_retry(images)
        parts = [self._infer_with_retry(images[i : i + step]) for i in range(0, len(images), step)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _infer_with_retry(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        settings = self.target.settings
        last: BaseException | None = None
        with self._lock:
            for attempt in range(settings.retries + 1):
                try:
                    return self._infer_once(images)
                except UniadError:
                    raise
                except Exception as exc:  # noqa: BLE001 - classified below
                    if not _is_connection_error(exc):
                        raise UniadError(
                            f"Triton server at {self.target.url} refused the request: "
                            f"{_first_line(exc)}"
                        ) from None
                    last = exc
                if attempt < settings.retries:
                    time.sleep(settings.retry_delay)
                    try:
                        self._connect()
                    except UniadError:
                        continue
            raise UniadError(
                f"Triton server at {self.target.url} is unreachable after {settings.retries + 1} "
                f"attempt(s) ({_first_line(last)}); check that it is running"
            )

    def _infer_once(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        module = self._module()
        if self._client is None:
            self._connect()
        image = module.InferInput(INPUT_NAME, list(images.shape), "UINT8")
        image.set_data_from_numpy(np.ascontiguousarray(images))
        wanted = [module.InferRequestedOutput(name) for name in (OUTPUT_MAP, OUTPUT_SCORE)]
        kwargs: dict[str, Any] = {"outputs": wanted, "model_version": self.target.settings.version}
        if self._is_grpc:
            kwargs["client_timeout"] = self.target.settings.timeout
        result = self._client.infer(self.target.model, [image], **kwargs)
        maps = result.as_numpy(OUTPUT_MAP)
        scores = result.as_numpy(OUTPUT_SCORE)
        n = len(images)
        if maps is None or scores is None or maps.shape[0] != n or scores.size != n:
            raise UniadError(
                f"Triton model {self.target.model!r} returned maps "
                f"{None if maps is None else maps.shape} and scores "
                f"{None if scores is None else scores.shape} for a batch of {n}"
            )
        # as_numpy views the response buffer read-only; the caller owns (and may edit) results.
        return np.array(maps, np.float32), np.array(scores.reshape(n), np.float32)

    def close(self) -> None:
        with self._lock:
            self._close_client(self._client)
            self._client = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


CONNECTION_MARKERS = (
    "unavailable",
    "connection refused",
    "failed to connect",
    "connect failed",
    "socket closed",
    "connection reset",
    "deadline exceeded",
    "broken pipe",
    "timed out",
    "timeout",
)


def _is_connection_error(exc: BaseException) -> bool:
    """A dropped or refused connection (worth reconnecting), as opposed to a rejected request."""
    if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
        return True
    status = getattr(exc, "status", lambda: None)
    code = status() if callable(status) else status
    text = f"{code} {exc}".lower()
    return any(marker in text for marker in CONNECTION_MARKERS)
