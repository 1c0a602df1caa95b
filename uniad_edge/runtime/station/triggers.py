"""Trigger sources for a triggered station: lines on stdin, messages on an MQTT topic.

A trigger names the part in front of the cameras. Both sources read the same payloads: a JSON
object `{"camera": "top", "part_id": "P-17"}` (either key optional), or a text line
`CAMERA [PART_ID]`; a text line whose first word is not a camera name triggers every camera
with the whole line as the part id, and a blank line is ignored (a camera name alone, or `{}`,
triggers without a part id). Part ids follow `part_id.check_part_id`, as the API's do. In a
one-camera station a line like `top P-18` whose first word is not the camera's name is likely
a wrong camera name, so that case is warned about (once) while the rule still holds.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from typing import IO, Any, Protocol

from ...errors import UniadError
from ..backends.base import Closeable
from ..mqtt_url import parse_mqtt_url
from ..part_id import check_part_id
from ..record import VerdictRecord


class TriggerTarget(Protocol):
    """What a trigger source needs of a station (a protocol, so this module never imports the
    station core that constructs it)."""

    cameras: Any

    def trigger_async(self, camera: str, part_id: str | None) -> Future[VerdictRecord]: ...

    def stop(self, reason: str) -> None: ...


log = logging.getLogger(__name__)


def parse_trigger(payload: str, cameras: list[str]) -> list[tuple[str, str | None]]:
    """(camera, part id) pairs that one trigger payload asks for (none for a blank line)."""
    text = payload.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UniadError(f"trigger {text[:80]!r} is not valid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise UniadError(f"trigger {text[:80]!r} is not a JSON object")
        part = data.get("part_id")
        part = check_part_id(None if part is None else str(part))
        camera = data.get("camera")
        if camera is None:
            return [(name, part) for name in cameras]
        if camera not in cameras:
            raise UniadError(f"trigger names camera {camera!r}; cameras: {', '.join(cameras)}")
        return [(str(camera), part)]
    if not text:
        return []
    first, _, rest = text.partition(" ")
    if first in cameras:
        return [(first, check_part_id(rest))]
    part = check_part_id(text)
    return [(name, part) for name in cameras]


def unknown_camera_word(payload: str, cameras: list[str]) -> str | None:
    """The first word of a several-word text line sent to a one-camera station when it is not
    that camera's name (so it became part of the part id), else None."""
    text = payload.strip()
    if len(cameras) != 1 or text.startswith("{"):
        return None
    first, _, rest = text.partition(" ")
    return first if rest.strip() and first != cameras[0] else None


class _TriggerSource(Closeable):
    def __init__(self, station: TriggerTarget) -> None:
        self.station = station
        self.received = 0
        self.rejected = 0
        self._warned_unknown_camera = False

    def fire(self, payload: str) -> list[Future[VerdictRecord]]:
        cameras = list(self.station.cameras)
        try:
            asks = parse_trigger(payload, cameras)
        except UniadError as exc:
            self.rejected += 1
            log.warning("ignoring trigger: %s", exc)
            return []
        if not asks:  # a blank line
            return []
        self.received += 1
        self._warn_unknown_camera(payload, cameras)
        return [self.station.trigger_async(camera, part) for camera, part in asks]

    def _warn_unknown_camera(self, payload: str, cameras: list[str]) -> None:
        word = unknown_camera_word(payload, cameras)
        if word is None or self._warned_unknown_camera:
            return
        self._warned_unknown_camera = True
        log.warning(
            "trigger %r: %r is not a camera of this station (its camera is %r), so the whole "
            "line was taken as the part id; start the line with %r to name the camera "
            "(warned once)",
            payload.strip(),
            word,
            cameras[0],
            cameras[0],
        )


class StdinTriggers(_TriggerSource):
    """One trigger per line; at end of input the station finishes the pending triggers and
    stops (so `printf 'P1\\nP2\\n' | uniad-edge run --trigger stdin ...` scores two parts)."""

    def __init__(self, station: TriggerTarget, stream: IO[str] | IO[bytes] | None = None) -> None:
        super().__init__(station)
        self.stream = stream if stream is not None else sys.stdin.buffer
        self._thread = threading.Thread(target=self._read, name="uniad-trigger-stdin", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        futures: list[Future[VerdictRecord]] = []
        for line in self.stream:
            futures += self.fire(as_text(line))
        wait_futures(futures)
        self.station.stop("end of triggers")


class MqttTriggers(_TriggerSource):
    """Subscribes to the topic of `mqtt://host:port/topic` (QoS 1) on its own paho client."""

    def __init__(self, station: TriggerTarget, url: str) -> None:
        from ..sinks.mqtt import connect_client

        super().__init__(station)
        self.address = parse_mqtt_url(url)
        self.subscribed = threading.Event()
        self.client = connect_client(
            self.address,
            f"uniad-edge-trigger-{uuid.uuid4().hex[:8]}",
            on_connect=self._on_connect,
            on_subscribe=lambda *_args: self.subscribed.set(),
            on_message=lambda _c, _u, msg: self.fire(as_text(msg.payload)),
        )

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any):
        if reason.is_failure:
            log.warning("MQTT trigger broker %s refused: %s", self.address, reason)
            return
        client.subscribe(self.address.topic, qos=1)  # again after every reconnect

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def as_text(line: str | bytes) -> str:
    """A trigger line as text: bytes that are not UTF-8 become U+FFFD (as do lone surrogates
    from a text stream), so every JSON reader can read the part id that holds them."""
    if isinstance(line, str):
        line = line.encode("utf-8", "surrogatepass")
    return line.decode("utf-8", "replace")


def trigger_kind(spec: str) -> str:
    if spec == "stdin":
        return "stdin"
    if spec.startswith("mqtt://"):
        return "mqtt"
    raise UniadError(f"trigger {spec!r}: use stdin or mqtt://host:port/topic")


TRIGGERS: dict[str, Callable[[TriggerTarget, str], _TriggerSource]] = {
    "stdin": lambda station, _spec: StdinTriggers(station),
    "mqtt": MqttTriggers,
}
