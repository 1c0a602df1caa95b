"""Run the service under uvicorn: build it from a config, serve until SIGTERM/Ctrl-C, then shut
down in order (stop accepting, answer in-flight requests, end streams, release cameras, flush).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType

import uvicorn

from ..errors import UniadError
from ..runtime.detector import Detector
from ..runtime.station import StationSummary
from .app import create_app
from .auth import install_redaction
from .config import ServeConfig
from .connections import bounded_protocol, quiet_accept_errors, raise_open_file_limit
from .service import ScoringService

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def build_service(config: ServeConfig, detector: Detector | None = None) -> ScoringService:
    """Open the model (in the station's slot, unless the caller lends one), the cameras, and
    start the station; on any failure release what was opened."""
    service = ScoringService(config, detector)
    try:
        service.start()
    except BaseException:
        service.close()
        raise
    return service


class _Server(uvicorn.Server):
    """uvicorn's server, telling the service to end its streams as soon as a signal arrives
    (otherwise an open dashboard would hold the graceful shutdown until its timeout)."""

    def __init__(
        self,
        config: uvicorn.Config,
        service: ScoringService,
        on_listening: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self.service = service
        self.on_listening = on_listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's startup (bind, listen), then `on_listening` once requests can come in."""
        quiet_accept_errors(asyncio.get_running_loop())
        await super().startup(sockets)
        if self.started and self.on_listening is not None:
            self.on_listening()

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.service.stopping.set()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM start the graceful shutdown. Unlike uvicorn's own handler, the signal
        is not raised again afterwards: the command then closes the cameras, prints its
        summary and exits 0, as a service stopped on purpose should."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def uvicorn_config(service: ScoringService, log_level: str = "info") -> uvicorn.Config:
    """uvicorn's settings for `service`; its access log never shows a `?token=` secret, its
    connections are bounded (`connections.py`)."""
    config = service.config
    settings = uvicorn.Config(
        create_app(service),
        host=config.host,
        port=config.port,
        http=bounded_protocol(
            config.max_connections, config.header_timeout_s, config.body_timeout_s
        ),
        backlog=config.max_connections,  # asyncio accepts up to this many per loop tick
        timeout_keep_alive=config.keepalive_timeout_s,
        h11_max_incomplete_event_size=config.max_header_kb * 1024,
        log_level=log_level,
        timeout_graceful_shutdown=int(config.graceful_timeout_s),
        server_header=False,
        ssl_certfile=config.tls_cert,
        ssl_keyfile=config.tls_key,
    )
    install_redaction()  # after uvicorn.Config, which (re)configures its loggers
    return settings


@dataclass
class ServeSummary:
    """What a finished `serve` did: verdicts per camera (the API is "api"), and the station's
    own summary when it ran cameras."""

    counters: dict[str, dict[str, int]]
    station: StationSummary | None


def _cannot_listen(
    config: ServeConfig, why: str = "in use, or not an address of this machine"
) -> UniadError:
    return UniadError(
        f"could not listen on {config.host}:{config.port} ({why}); choose another --port or --host"
    )


def check_port_free(config: ServeConfig) -> None:
    """Bind the address as uvicorn will (SO_REUSEADDR) and let it go: a port in use is a clear
    error before minutes of model loading and camera opening, not after."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            config.host, config.port, type=socket.SOCK_STREAM
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise _cannot_listen(config, exc.strerror or str(exc)) from None


def serve(
    config: ServeConfig,
    log_level: str = "info",
    on_listening: Callable[[], None] | None = None,
) -> ServeSummary:
    """Serve until a signal; what was done, for the summary. `on_listening` is called once
    the port accepts requests (the model loaded, the cameras opened)."""
    check_port_free(config)
    raise_open_file_limit(config.max_connections)
    service = build_service(config)
    server = _Server(uvicorn_config(service, log_level), service, on_listening)
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind; say why in our own words
        pass
    finally:
        service.close()
    if not server.started:
        raise _cannot_listen(config)
    return ServeSummary(
        service.hub.snapshot()["counters"],
        service.station.summary if config.station.cameras else None,
    )


class BackgroundServer:
    """The service on a uvicorn thread (tests, benchmarks): `with BackgroundServer(service):`."""

    def __init__(
        self,
        service: ScoringService,
        log_level: str = "warning",
        sock: socket.socket | None = None,
    ) -> None:
        """`sock`: a socket already bound to the config's port, served as it is (a test holds
        its port from choosing it to serving on it)."""
        self.service = service
        self.server = _Server(uvicorn_config(service, log_level), service)
        sockets = {"sockets": [sock]} if sock is not None else {}
        self._thread = threading.Thread(
            target=self.server.run, kwargs=sockets, name="uniad-serve", daemon=True
        )

    @property
    def url(self) -> str:
        config = self.service.config
        return f"{config.scheme}://{config.host}:{config.port}"

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        while not self.server.started:
            if not self._thread.is_alive():
                raise UniadError(f"the server did not start on {self.url}")
            self._thread.join(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.service.stopping.set()
        self.server.should_exit = True
        self._thread.join(30)
        self.service.close()
