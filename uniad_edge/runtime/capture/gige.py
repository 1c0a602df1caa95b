"""GenICam machine-vision cameras (GigE Vision, USB3 Vision) through Aravis: `gige://DEVICE`.

`DEVICE` is the Aravis device id (`Aravis-Fake-GV01`, `Basler-21234567`, an IP address), or
empty for the first camera found. GenICam settings come from the query, e.g.
`gige://Basler-21234567?exposure=5000&gain=2&pixel_format=BayerRG8&trigger=line1`; each is
checked against what the camera offers, applied, read back and logged, and one that the camera
lacks or that is out of its range is a one-line error at start naming what it offers.

Triggers: under a station trigger (stdin, MQTT, HTTP, OPC UA) the camera runs in trigger mode
and every station trigger fires `TriggerSoftware`, so each part gets exactly the frame taken for
it; `trigger=lineN` lets the camera's I/O line trigger it (every frame is a part, the station
free-runs); `trigger=off` free-runs the camera even under a station trigger (the station then
takes the first frame captured after each trigger).

Frames carry the camera's `camera_frame_id` and `camera_timestamp` (ns, camera clock) into
their record. A frame that arrives incomplete (missing packets, timeout) and frame ids that
never arrived are counted in `lost`, never scored; an incomplete frame answering a software
trigger becomes that part's ERROR record instead, so the part is never left without a verdict.
A camera that stops answering, or that restarted and so forgot this station's control and
stream, makes `read` return None, so the stream reconnects it under the station's policy; one
that was never found gives up after `NEVER_SEEN_PATIENCE_S` (with the default policy), listing
the cameras that were found.

PyGObject and Aravis (`pip install uniad-edge[gige]`, Debian `gir1.2-aravis-0.8`) are imported
only when a `gige://` source is opened.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import numpy as np

from ...errors import UniadError
from .base import Reader, SourceRefused, Unreadable
from .pixels import FORMATS, check_depth, pixel_format, to_frame

log = logging.getLogger(__name__)

SCHEME = "gige://"
NEVER_SEEN_PATIENCE_S = 5.0  # AUTO policy for a camera never opened (once seen: for ever)
BUFFERS = 8  # frame buffers queued to the camera's stream
POLL_US = 200_000  # a read wakes this often to notice stop()
HEALTH_CHECK_S = 1.0  # after this long without a frame, ask the camera whether it is there
TRIGGER_TIMEOUT_S = 2.0  # a software trigger unanswered this long is that part's ERROR
# Aravis's device lists and the interfaces behind them are not thread safe (its "Thread Safety"
# notes): a discovery beside another camera's reopen returned garbage device ids here. Every
# listing and opening in this process goes through this lock; a discovery inside an opening's
# error message takes it again.
SYSTEM_LOCK = threading.RLock()
FRAME_ID_WRAP = 0xFFFF  # GigE Vision 1.x block ids run 1..65535, then start again at 1
MISSING_IDS_KEPT = 1024  # ids counted missing that a late frame may still take back
SETTINGS = (
    "exposure",
    "gain",
    "pixel_format",
    "roi",
    "fps",
    "trigger",
    "activation",
    "packet_size",
)
INSTALL = (
    "install Aravis and PyGObject: apt-get install gir1.2-aravis-0.8 libgirepository1.0-dev "
    'libcairo2-dev pkg-config, then pip install "uniad-edge[gige]"'
)


@dataclass(frozen=True)
class GigeSettings:
    """The GenICam settings a `gige://` URL asks for (None: leave the camera's own)."""

    exposure: float | None = None  # µs
    gain: float | None = None
    pixel_format: str | None = None
    roi: tuple[int, int, int, int] | None = None  # sensor region: x, y, width, height
    fps: float | None = None
    trigger: str | None = None  # off, software, or an I/O line (line1)
    activation: str | None = None  # of a line trigger: RisingEdge, FallingEdge, ...
    packet_size: int | None = None  # GigE Vision only: bytes per stream packet


@dataclass(frozen=True)
class GigeSource:
    device: str | None  # None: the first camera found
    settings: GigeSettings = field(default_factory=GigeSettings)

    @property
    def label(self) -> str:
        return f"gige://{self.device or ''}"


def parse_gige_url(text: str) -> GigeSource:
    """`gige://DEVICE?key=value&...` as a device id and its settings (one-line errors)."""
    parts = urlsplit(text)
    device = unquote(parts.netloc + parts.path).strip("/") or None
    values: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in SETTINGS:
            raise UniadError(
                f"{text}: unknown setting {key!r}; gige:// takes {', '.join(SETTINGS)}"
            )
        values[key] = _setting(text, key, value)
    if values.get("activation") is not None and not _is_line(values.get("trigger")):
        raise UniadError(f"{text}: activation applies to a line trigger (trigger=line1)")
    return GigeSource(device, GigeSettings(**values))


def with_settings(source: Any, settings: Any, where: str) -> str:
    """`source` (a gige:// URL) with a station file's `genicam` table added to its query, each
    value checked as the query's would be; a setting given in both places is refused."""
    if not isinstance(source, str) or not is_gige(source):
        raise UniadError(f"{where}: genicam settings need a gige:// source, got {source!r}")
    if not isinstance(settings, dict):
        raise UniadError(f"{where}: genicam must be a table (exposure = 5000, ...)")
    given = parse_gige_url(source).settings
    extra = []
    for key, value in settings.items():
        if key in SETTINGS and getattr(given, key) is not None:
            raise UniadError(f"{where}: {key} is both in the source URL and in genicam")
        text = ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        extra.append((key, text))
    url = f"{source}{'&' if '?' in source else '?'}{urlencode(extra)}"
    parse_gige_url(url)  # unknown keys and bad values: the query's one-line errors
    return url


def _setting(text: str, key: str, value: str) -> Any:
    try:
        if key in ("exposure", "gain", "fps"):
            number = float(value)
            if not number >= 0 or number == float("inf"):
                raise ValueError
            return number
        if key == "packet_size":
            return int(value)
        if key == "roi":
            roi = tuple(int(v) for v in value.split(","))
            if len(roi) != 4 or min(roi) < 0 or min(roi[2:]) < 1:
                raise ValueError
            return roi
    except ValueError:
        shape = "x,y,width,height" if key == "roi" else "a number"
        raise UniadError(f"{text}: {key} must be {shape}, got {value!r}") from None
    if key == "trigger" and value.lower() not in ("off", "software") and not _is_line(value):
        raise UniadError(f"{text}: trigger must be off, software or a line (line1), got {value!r}")
    if not value:
        raise UniadError(f"{text}: {key} is empty")
    return value.lower() if key == "trigger" else value


def _is_line(trigger: str | None) -> bool:
    return trigger is not None and trigger.lower().startswith("line") and trigger[4:].isdigit()


def aravis() -> Any:
    """The Aravis module (PyGObject), or the error that says how to install it."""
    try:
        import gi

        gi.require_version("Aravis", "0.8")
        from gi.repository import Aravis
    except (ImportError, ValueError) as exc:
        raise SourceRefused(
            f"gige:// needs Aravis 0.8 through PyGObject ({exc}); {INSTALL}"
        ) from None
    return Aravis


@dataclass(frozen=True)
class CameraInfo:
    """A GenICam device as discovery and its own features describe it."""

    device: str
    vendor: str
    model: str
    serial: str
    protocol: str
    address: str
    pixel_formats: tuple[str, ...] = ()
    trigger_sources: tuple[str, ...] = ()
    note: str = ""  # why formats and triggers are missing (in use by another application)


def discover(details: bool = True) -> list[CameraInfo]:
    """The GenICam cameras Aravis finds; with `details` each is opened for its pixel formats and
    trigger sources (a camera another application controls is listed with a note)."""
    arv = aravis()
    found = []
    with SYSTEM_LOCK:
        arv.update_device_list()
        for i in range(arv.get_n_devices()):
            info = CameraInfo(
                device=arv.get_device_id(i) or "",
                vendor=arv.get_device_vendor(i) or "",
                model=arv.get_device_model(i) or "",
                serial=arv.get_device_serial_nbr(i) or "",
                protocol=arv.get_device_protocol(i) or "",
                address=arv.get_device_address(i) or "",
            )
            found.append(_with_features(arv, info) if details else info)
    return found


def _with_features(arv: Any, info: CameraInfo) -> CameraInfo:
    camera = None
    try:
        camera = arv.Camera.new(info.device)
        if camera.is_gv_device() and not camera.get_device().is_controller():
            return replace(info, note="in use by another application")
        formats = tuple(camera.dup_available_pixel_formats_as_strings() or ())
        sources = tuple(camera.dup_available_trigger_sources() or ())
    except Exception as exc:  # noqa: BLE001 (a GLib.GError: listed with the reason)
        return replace(info, note=_message(exc))
    finally:
        _release(camera)
    return replace(info, pixel_formats=formats, trigger_sources=sources)


def _release(camera: Any) -> None:
    """Give up GigE Vision control of `camera` now. Dropping the object would too, but only
    once nothing refers to it, and a traceback kept by an error refers to it for as long as
    the error lives: the camera's next opening would find itself locked out."""
    if camera is None or not camera.is_gv_device():
        return
    device = camera.get_device()
    with contextlib.suppress(Exception):  # a camera that is gone has no control to give up
        if device.is_controller():
            device.leave_control()


def _message(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc)


def _found_line() -> str:
    cameras = discover(details=False)
    if not cameras:
        return (
            "no GenICam camera found (a GigE Vision camera must be on a subnet of this host's "
            "network interfaces; a USB3 Vision one needs Aravis's udev rules)"
        )
    listed = ", ".join(f"{c.device} ({c.vendor} {c.model}, {c.address})" for c in cameras)
    return f"cameras found: {listed}"


class FrameIds:
    """Frame ids that never arrived, from the ids that did. GigE Vision 1.x block ids run
    1..65535 and start again at 1; wider ids (GigE Vision 2, USB3 Vision) just count. A frame
    completed late (packets resent) arrives after a newer one: it is not a gap, and an id
    counted missing that turns up after all is taken back."""

    def __init__(self) -> None:
        self.missing = 0
        self.last: int | None = None
        self._skipped: deque[int] = deque(maxlen=MISSING_IDS_KEPT)

    def restart(self) -> None:
        """A new acquisition: its ids continue from wherever the camera's are."""
        self.last = None

    def see(self, frame_id: int) -> None:
        last = self.last
        if last is None:
            self.last = frame_id or None
            return
        if last <= FRAME_ID_WRAP and frame_id <= FRAME_ID_WRAP:
            ahead = (frame_id - last) % FRAME_ID_WRAP
            behind = ahead > FRAME_ID_WRAP // 2
        else:
            ahead, behind = frame_id - last, frame_id <= last
        if behind or not ahead:  # late, or a duplicate
            if frame_id in self._skipped:
                self._skipped.remove(frame_id)
                self.missing -= 1
            return
        self.missing += ahead - 1
        self._skipped.extend(
            (last + k - 1) % FRAME_ID_WRAP + 1 if last <= FRAME_ID_WRAP else last + k
            for k in range(1, min(ahead, MISSING_IDS_KEPT + 1))
        )
        self.last = frame_id


class GigeReader(Reader):
    """Frames from one GenICam camera's stream (see the module docstring)."""

    live = True

    def __init__(self, source: GigeSource, bit_depth: int | None) -> None:
        self.source = source
        self.settings = source.settings
        self.bit_depth = bit_depth
        self.description = source.label
        self.patience_s = NEVER_SEEN_PATIENCE_S
        self.incomplete = 0  # frames that arrived without all their packets
        self.unanswered = 0  # software triggers no frame came for
        self.ids = FrameIds()
        self.station_triggered = False
        self.applied: dict[str, Any] = {}  # what the camera reports after the settings
        self._camera: Any = None
        self._stream: Any = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._software = self.settings.trigger == "software"  # one frame per fire()
        self._waiting = 0  # station triggers not yet sent to the camera
        self._sent_at: float | None = None  # when the unanswered TriggerSoftware went out
        self._resent = False  # the trigger out is a resend after an incomplete frame
        self._facts: Mapping[str, Any] = {}
        self._line = False  # the camera's I/O line triggers it
        self._triggered: float | None = None

    # -- the station's side ----------------------------------------------------------------

    def use_station_trigger(self) -> None:
        self.station_triggered = True
        self._software = self.settings.trigger in (None, "software")

    def fire(self) -> None:
        """One station trigger: `TriggerSoftware` when the camera runs in software trigger
        mode. One goes out at a time (a camera busy with a frame drops a trigger), the next
        when its frame came; one that a camera going away lost is sent again once it is back."""
        with self._lock:
            if self._software:
                self._waiting += 1
                self._send_next()

    def _send_next(self) -> None:
        """Send a waiting trigger if none is out (holding the lock)."""
        if self._sent_at is not None or not self._waiting or self._camera is None:
            return
        try:
            self._camera.software_trigger()
        except Exception as exc:  # noqa: BLE001 (GLib.GError: sent again on reconnect)
            log.warning("%s: software trigger failed (%s)", self.description, _message(exc))
            return
        self._waiting -= 1
        self._sent_at = time.monotonic()

    def stop(self) -> None:
        self._stopped.set()

    def frame_facts(self) -> Mapping[str, Any]:
        return self._facts

    def frame_triggered(self) -> float | None:
        return self._triggered

    @property  # type: ignore[override]
    def lost(self) -> int:
        """Frames never delivered whole: incomplete, missing ids, unanswered triggers."""
        return self.incomplete + self.ids.missing + self.unanswered

    # -- Reader ----------------------------------------------------------------------------

    def open(self) -> None:
        arv = aravis()
        self._check_trigger_use()
        with SYSTEM_LOCK:
            device = _resolve(arv, self.source.device)
            try:
                camera = arv.Camera.new(device)
            except Exception as exc:  # noqa: BLE001 (GLib.GError)
                raise UniadError(f"{self.description}: {_message(exc)}; {_found_line()}") from None
        try:
            if camera.is_gv_device() and not camera.get_device().is_controller():
                raise SourceRefused(
                    f"{self.description} ({camera.get_device_id()}) is in use by another "
                    "application or station (GigE Vision control is held elsewhere); stop it, "
                    "or give each station its own camera"
                )
            self._apply(arv, camera)
            stream = self._start(arv, camera)
        except Exception as exc:
            _release(camera)
            if isinstance(exc, UniadError):
                raise
            raise UniadError(f"{self.description}: {_message(exc)}") from None  # GLib.GError
        with self._lock:
            self._camera, self._stream = camera, stream
            self.ids.restart()
            if self._sent_at is not None:  # lost with the camera: send it again
                self._waiting, self._sent_at = self._waiting + 1, None
            self._send_next()
        self.patience_s = None  # seen once: a camera that goes away is waited for

    def _check_trigger_use(self) -> None:
        trigger = self.settings.trigger
        if trigger == "software" and not self.station_triggered:
            raise SourceRefused(
                f"{self.description}: trigger=software needs a station trigger (--trigger "
                "stdin or mqtt://..., serve's HTTP or OPC UA trigger); use trigger=off to "
                "free-run"
            )
        if _is_line(trigger) and self.station_triggered:
            raise SourceRefused(
                f"{self.description}: trigger={trigger} lets the camera's line trigger the "
                "station; leave out the station trigger (--trigger), or use trigger=software"
            )

    def _apply(self, arv: Any, camera: Any) -> None:
        """Apply each setting after checking it against the camera; read each back."""
        s, name = self.settings, self.description
        applied: dict[str, Any] = {}
        if s.pixel_format is not None:
            offered = list(camera.dup_available_pixel_formats_as_strings() or ())
            if s.pixel_format not in offered:
                readable = [f for f in offered if pixel_format(f) is not None]
                raise SourceRefused(
                    f"{name}: pixel_format {s.pixel_format} is not offered; it offers "
                    f"{', '.join(offered)} (readable here: {', '.join(readable) or 'none'})"
                )
            camera.set_pixel_format_from_string(s.pixel_format)
        current = camera.get_pixel_format_as_string()
        fmt = pixel_format(current)
        if fmt is None:
            offered = camera.dup_available_pixel_formats_as_strings() or ()
            readable = [f for f in offered if pixel_format(f) is not None]
            raise SourceRefused(
                f"{name}: pixel format {current} cannot be read here (packed or unknown); set "
                f"pixel_format= one of {', '.join(readable) or ', '.join(FORMATS)}"
            )
        problem = check_depth(fmt, self.bit_depth)
        if problem is not None:
            raise SourceRefused(f"{name}: {problem}")
        applied["pixel_format"] = current
        if s.roi is not None:
            applied["roi"] = self._region(camera, name, s.roi)
        if s.exposure is not None:
            _needs(camera.is_exposure_time_available(), name, "exposure")
            self._in_bounds(name, "exposure", s.exposure, camera.get_exposure_time_bounds(), "µs")
            camera.set_exposure_time(s.exposure)
            applied["exposure"] = round(camera.get_exposure_time(), 3)
        if s.gain is not None:
            _needs(camera.is_gain_available(), name, "gain")
            self._in_bounds(name, "gain", s.gain, camera.get_gain_bounds(), "")
            camera.set_gain(s.gain)
            applied["gain"] = round(camera.get_gain(), 3)
        if s.fps is not None:  # before the trigger: Aravis's frame rate turns triggers off
            _needs(camera.is_frame_rate_available(), name, "fps")
            self._in_bounds(name, "fps", s.fps, camera.get_frame_rate_bounds(), "frames/s")
            camera.set_frame_rate(s.fps)
            applied["fps"] = round(camera.get_frame_rate(), 3)
        if s.packet_size is not None:
            if not camera.is_gv_device():
                raise SourceRefused(f"{name}: packet_size applies to GigE Vision cameras only")
            bounds = camera.get_integer_bounds("GevSCPSPacketSize")
            self._in_bounds(name, "packet_size", s.packet_size, bounds, "bytes")
            camera.gv_set_packet_size(s.packet_size)
            applied["packet_size"] = camera.gv_get_packet_size()
        applied["trigger"] = self._trigger(camera, name)
        self.applied = applied
        for key in ("exposure", "gain", "fps"):
            asked, got = getattr(s, key), applied.get(key)
            if asked is not None and not math.isclose(asked, got, rel_tol=0.01, abs_tol=1e-6):
                log.warning(
                    "%s: %s %g asked, the camera set %g (its own steps or limits)",
                    self.description,
                    key,
                    asked,
                    got,
                )
        log.info(
            "%s (%s): %s",
            self.description,
            name,
            ", ".join(f"{k} {v}" for k, v in applied.items()),
        )

    def _trigger(self, camera: Any, name: str) -> str:
        trigger = "software" if self._software else (self.settings.trigger or "off")
        self._line = _is_line(trigger)
        if trigger == "off":
            camera.clear_triggers()
            return "off"
        sources = list(camera.dup_available_trigger_sources() or ())
        wanted = "Software" if trigger == "software" else trigger
        match = next((src for src in sources if src.lower() == wanted.lower()), None)
        if match is None:
            raise SourceRefused(
                f"{name}: trigger {trigger} is not offered; its trigger sources are "
                f"{', '.join(sources) or 'none'}"
            )
        camera.set_trigger(match)
        applied = camera.get_trigger_source()
        activation = self.settings.activation
        if activation is not None:
            device = camera.get_device()
            offered = list(
                device.dup_available_enumeration_feature_values_as_strings("TriggerActivation")
                or ()
            )
            if activation not in offered:
                raise SourceRefused(
                    f"{name}: activation {activation} is not offered; it offers "
                    f"{', '.join(offered) or 'none'}"
                )
            device.set_string_feature_value("TriggerActivation", activation)
            applied += f" {device.get_string_feature_value('TriggerActivation')}"
        return applied

    @staticmethod
    def _in_bounds(name: str, key: str, value: float, bounds: Any, unit: str) -> None:
        low, high = bounds
        if not low <= value <= high:
            raise SourceRefused(
                f"{name}: {key} {value:g} is out of range; it offers {low:g}..{high:g}"
                + (f" {unit}" if unit else "")
            )

    def _region(self, camera: Any, name: str, roi: tuple[int, int, int, int]) -> list[int]:
        x, y, w, h = roi
        width, height = camera.get_width_bounds(), camera.get_height_bounds()
        sensor = camera.get_sensor_size()
        self._in_bounds(name, "roi width", w, width, "pixels")
        self._in_bounds(name, "roi height", h, height, "pixels")
        if x + w > sensor[0] or y + h > sensor[1]:
            raise SourceRefused(
                f"{name}: roi {x},{y},{w},{h} does not fit its {sensor[0]}x{sensor[1]} sensor"
            )
        camera.set_region(x, y, w, h)
        got = camera.get_region()
        return [got.x, got.y, got.width, got.height] if hasattr(got, "x") else list(got)

    def _start(self, arv: Any, camera: Any) -> Any:
        if camera.is_gv_device() and _loopback(camera.get_device().get_device_address()):
            # packet sockets see nothing on loopback (the GigE Vision simulator's case)
            camera.gv_set_stream_options(arv.GvStreamOption.PACKET_SOCKET_DISABLED)
        stream = camera.create_stream(None, None)
        if camera.is_gv_device():  # a buffer the size of a frame: no packets lost in bursts
            stream.set_property("socket-buffer", arv.GvStreamSocketBuffer.AUTO)
        payload = camera.get_payload()
        for _ in range(BUFFERS):
            stream.push_buffer(arv.Buffer.new_allocate(payload))
        camera.start_acquisition()
        return stream

    def read(self) -> tuple[np.ndarray | Unreadable, str] | None:
        quiet_since = time.monotonic()
        while not self._stopped.is_set():
            stream = self._stream
            if stream is None:
                return None
            buffer = stream.timeout_pop_buffer(POLL_US)
            if buffer is not None:
                got = self._take(buffer)
                stream.push_buffer(buffer)
                if got is not None:
                    return got
                quiet_since = time.monotonic()
                continue
            late = self._late_trigger()
            if late is not None:
                return late
            if time.monotonic() - quiet_since >= HEALTH_CHECK_S:
                if not self._answers():
                    return None
                quiet_since = time.monotonic()
        return None

    def _late_trigger(self) -> tuple[Unreadable, str] | None:
        """The ERROR frame of a software trigger the camera did not answer in time."""
        with self._lock:
            sent = self._sent_at
            if sent is None or time.monotonic() - sent < TRIGGER_TIMEOUT_S:
                return None
            self._sent_at = None
            self._send_next()
        self.unanswered += 1
        reason = f"no frame within {TRIGGER_TIMEOUT_S:g} s of the software trigger"
        return Unreadable(f"{self.description}: {reason}"), ""

    def _answers(self) -> bool:
        """Whether the camera is still this station's and answers (it went quiet: triggered,
        restarted, or gone). One that restarted within seconds answers register reads, yet has
        forgotten its stream and who controlled it, so it would stay quiet for ever; Aravis's
        heartbeat notices that control was lost, so that is asked first."""
        camera = self._camera
        if camera.is_gv_device() and not camera.get_device().is_controller():
            log.warning("%s restarted or dropped this station's control", self.description)
            return False
        try:
            camera.get_integer("Width")
        except Exception as exc:  # noqa: BLE001 (GLib.GError: the camera is gone)
            log.warning("%s stopped answering (%s)", self.description, _message(exc))
            return False
        return True

    def _take(self, buffer: Any) -> tuple[np.ndarray | Unreadable, str] | None:
        """The frame in `buffer`; None for an incomplete free-running frame (counted)."""
        frame_id = int(buffer.get_frame_id())
        self.ids.see(frame_id)
        self._facts = {
            "camera_frame_id": frame_id,
            "camera_timestamp": int(buffer.get_timestamp()),
        }
        status = buffer.get_status().value_nick
        self._triggered = _host_arrival(buffer) if self._line else None
        with self._lock:
            answers_trigger = self._sent_at is not None
            self._sent_at = None
            # an incomplete answer: the same part's trigger once more (it is still there)
            retry = answers_trigger and status != "success" and not self._resent
            self._resent = retry
            self._waiting += retry
            self._send_next()
        if status != "success":
            self.incomplete += 1
            reason = f"incomplete frame {frame_id} from the camera ({status})"
            log.debug("%s: %s", self.description, reason)
            return (Unreadable(reason), "") if answers_trigger and not retry else None
        image = to_frame(
            buffer.get_image_data(),
            buffer.get_image_pixel_format(),
            buffer.get_image_width(),
            buffer.get_image_height(),
            self.bit_depth,
        )
        if isinstance(image, str):
            return Unreadable(f"frame {frame_id}: {image}"), ""
        return image, ""

    def close(self) -> None:
        with self._lock:
            camera, self._camera, self._stream = self._camera, None, None
        if camera is not None:
            with contextlib.suppress(Exception):  # a camera that is gone cannot stop
                camera.stop_acquisition()


def _host_arrival(buffer: Any) -> float:
    """When the frame's first packet reached this host, on the perf_counter() clock: where a
    line-triggered frame's trigger_ms starts (exposure and readout before it are the camera's,
    unseen by the host). Aravis stamps it in wall-clock ns."""
    return time.perf_counter() - max(time.time_ns() - buffer.get_system_timestamp(), 0) / 1e9


def _needs(available: bool, name: str, key: str) -> None:
    if not available:
        raise SourceRefused(f"{name} has no {key} feature; leave {key}= out")


def _resolve(arv: Any, device: str | None) -> str | None:
    """The device id to open for `device` (an id, an address, or None: the first camera);
    `device` itself when discovery does not see it (Aravis may still open it by address).
    The caller holds `SYSTEM_LOCK`."""
    arv.update_device_list()
    for i in range(arv.get_n_devices()):
        found = arv.get_device_id(i)
        if device is None or device in (found, arv.get_device_address(i) or ""):
            return found
    return device


def _loopback(address: Any) -> bool:
    """Whether a GigE Vision device's address (a Gio.InetSocketAddress) is on loopback."""
    try:
        return address.get_address().get_is_loopback()
    except AttributeError:  # not a socket address: not a network camera
        return False


def is_gige(source: str | int) -> bool:
    return isinstance(source, str) and source.lower().startswith(SCHEME)


def gige(source: str | int, bit_depth: int | None) -> Reader:
    return GigeReader(parse_gige_url(str(source)), bit_depth)
