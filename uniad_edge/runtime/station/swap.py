"""What starts a model update, and what the log says about it.

`Station.swap_model(path)` goes through the model slot (`slot.py`: open, check, install between
two batches). After a swap the log gets one `model_changed` record (`changed_record`).

`watch_model` reloads when the model file is replaced (e.g. atomically by `calibrate`);
`reload_on_sighup` reloads on SIGHUP (`uniad-edge run`).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ...redact import redact_url
from ..backends.base import Closeable
from .slot import PreparedModel

log = logging.getLogger(__name__)
WATCH_INTERVAL_S = 1.0


def changed_record(station: str, previous: str, prepared: PreparedModel) -> dict[str, Any]:
    """The log's `model_changed` record."""
    now = time.time()
    return {
        "event": "model_changed",
        "station": station,
        "timestamp": now,
        "time": datetime.fromtimestamp(now, timezone.utc).isoformat(),
        "model": prepared.model_id,
        "previous_model": previous,
        "path": redact_url(prepared.path),
    }


def file_signature(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is replaced or rewritten (None while it is missing)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class ModelWatcher(Closeable):
    """Calls `reload(path)` when `path` is replaced (a new inode, size or mtime), polled every
    `interval_s`: works on every filesystem, and `calibrate`'s atomic replace is one change."""

    def __init__(
        self, path: str | Path, reload: Callable[[str], Any], interval_s: float = WATCH_INTERVAL_S
    ) -> None:
        self.path = Path(path)
        self.reload = reload
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._seen = file_signature(self.path)
        self._thread = threading.Thread(target=self._run, name="uniad-model-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            now = file_signature(self.path)
            if now is not None and now != self._seen:
                self._seen = now
                log.info("%s changed; loading it", self.path)
                self.reload(str(self.path))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@contextmanager
def reload_on_sighup(reload: Callable[[], Any]) -> Iterator[None]:
    """SIGHUP reloads the model (the same path) while the block runs; main thread only."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGHUP"):
        yield
        return
    previous = signal.signal(signal.SIGHUP, lambda _signum, _frame: reload())
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, previous)
