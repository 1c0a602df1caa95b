"""What starts a model update, and what the log says about it.

`Station.swap_model(path)` goes through the model slot (`slot.py`: open, check, install between
two batches). After a swap the log gets one `model_changed` record (`changed_record`).

`watch_model` reloads when the model file is replaced (a new export); a new thresholds file
needs no reload (the slot picks it up, and the log gets one `thresholds_changed` record);
SIGHUP reloads too (`uniad-edge run`, `cli/live.py`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ...redact import redact_url
from ..backends.base import Closeable
from ..detector import Detector, threshold_for
from .inputs import Cameras
from .outputs import Outputs
from .slot import Loader, ModelSlot, PreparedModel, file_signature, open_checked

log = logging.getLogger(__name__)
WATCH_INTERVAL_S = 1.0


def changed_record(
    event: str, station: str, previous: str, model: str, path: str | None
) -> dict[str, Any]:
    """The log's `model_changed` / `thresholds_changed` record."""
    now = time.time()
    return {
        "event": event,
        "station": station,
        "timestamp": now,
        "time": datetime.fromtimestamp(now, timezone.utc).isoformat(),
        "model": model,
        "previous_model": previous,
        "path": None if path is None else redact_url(path),
    }


class ModelWatcher(Closeable):
    """Calls `reload(path)` when `path` is replaced (a new inode, size or mtime), polled every
    `interval_s`: works on every filesystem, and `calibrate`'s atomic replace is one change.

    A change is loaded once the file has stood still for one whole interval (same inode, size
    and mtime at two polls in a row): a slow copy written in place would otherwise be read half
    written, refused as corrupt, and said so at every poll until it finished."""

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
        last = self._seen  # the signature at the previous poll
        waiting = False  # said "waiting for the copy to finish" for this change
        while not self._stop.wait(self.interval_s):
            now = file_signature(self.path)
            if now is None or now == self._seen:
                last = now
                continue
            if now != last:  # still changing: look again after one more interval
                if last not in (None, self._seen) and not waiting:
                    waiting = True
                    log.info("%s is being written; waiting for the copy to finish", self.path)
                last = now
                continue
            self._seen, waiting = now, False
            log.info("%s changed; loading it", self.path)
            self.reload(str(self.path))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Updates:
    """A new model or thresholds file reaching a running station: a model is checked off the
    scoring thread (`slot.request`) and installed between two batches (`apply`), a thresholds
    file is picked up there too; each change is one event in the log."""

    def __init__(
        self,
        slot: ModelSlot,
        cameras: Cameras,
        outputs: Outputs,
        station: str,
        phase: Callable[[], str],
        wake: Callable[[], None],
    ) -> None:
        """`phase()`: "idle" (not started), "scoring" or "ended"; `wake` wakes the loop."""
        self.slot = slot
        self.cameras = cameras
        self.outputs = outputs
        self.station = station
        self.phase = phase
        self.wake = wake

    def swap(self, path: str | Path, detector: Detector | None = None) -> Future[str]:
        return self.slot.request(path, self._prepare, self._ready, detector)

    def apply(self) -> None:
        """On the scoring thread, between batches: a checked model, then a new thresholds
        file."""
        self._install()
        self._thresholds()

    def _prepare(self, path: str, opener: Loader, owned: bool) -> PreparedModel:
        reference = None
        for camera in self.cameras.values():
            if camera.latest_frame is not None:
                reference, _ = camera.prepare(camera.latest_frame)
                if reference is not None:
                    break
        configs = {name: camera.config for name, camera in self.cameras.items()}
        return open_checked(path, opener, self.slot.detector, configs, reference, owned)

    def _ready(self) -> None:
        """A checked model waits: the scoring thread takes it between batches; a station that
        is not scoring (not started, or ended) takes it now."""
        phase = self.phase()
        if phase == "scoring":
            self.wake()
        elif phase == "ended":
            self.slot.cancel("the station has ended")
        else:
            self._install()

    def _install(self) -> None:
        prepared = self.slot.take()
        if prepared is None:
            return
        for camera in self.cameras.values():
            camera.threshold = prepared.thresholds[camera.name]
        self.outputs.event(
            changed_record(
                "model_changed", self.station, self.slot.model_id, prepared.model_id, prepared.path
            )
        )
        self.slot.install(prepared)

    def _thresholds(self) -> None:
        """A new thresholds file: the cameras decide with it from the next batch on."""
        previous = self.slot.model_id
        if not self.slot.refresh_thresholds():
            return
        detector = self.slot.detector
        for camera in self.cameras.values():
            config = camera.config
            camera.threshold = threshold_for(detector, config.class_name, config.threshold)
        path = detector.in_force.path
        self.outputs.event(
            changed_record(
                "thresholds_changed",
                self.station,
                previous,
                self.slot.model_id,
                None if path is None else str(path),
            )
        )
