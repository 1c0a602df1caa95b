"""What a terminal command adds around a running station: signal handling and the status line.

The station is a library object (embedded in `serve`, the demo, benchmarks and other programs
that own their signals); only a command in the main thread may take over SIGINT, SIGTERM and
SIGHUP, so that lives here.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from ..runtime.station import Station


@contextlib.contextmanager
def _handlers(signals: tuple[int, ...], handle: Callable[[int], Any]) -> Iterator[None]:
    """`handle(signum)` for `signals` while the block runs; main thread only (Python delivers
    signals there), the previous handlers restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        handle(signum)

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def stop_on_signals(station: Station) -> contextlib.AbstractContextManager[None]:
    """First Ctrl-C/SIGTERM asks the station to drain and stop; a second Ctrl-C aborts."""

    def handle(signum: int) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        station.stop(signal.Signals(signum).name)

    return _handlers((signal.SIGINT, signal.SIGTERM), handle)


def reload_on_sighup(station: Station) -> contextlib.AbstractContextManager[None]:
    """SIGHUP reopens the sinks' files (the log, after logrotate moved it) and swaps in the
    station's model file again (the same path)."""
    model = station.config.model
    if not hasattr(signal, "SIGHUP"):
        return contextlib.nullcontext()

    def reload(_signum: int) -> None:
        for sink in station.sinks:
            sink.reopen()
        if model is not None:
            station.swap_model(model)

    return _handlers((signal.SIGHUP,), reload)


def status_line(station: Station) -> str:
    """One line for a live terminal display: per camera fps and OK/NG counts."""
    parts = []
    for name, state in station.states().items():
        parts.append(
            f"{name}: {state.status} {state.fps:5.1f} fps OK {state.ok} NG {state.ng}"
            + (f" err {state.errors}" if state.errors else "")
        )
    total = sum(state.frames for state in station.states().values())
    return f"frames {total}  " + "  |  ".join(parts)
