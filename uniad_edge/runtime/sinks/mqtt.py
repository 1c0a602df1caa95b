"""MQTT sink: one JSON message per verdict to the line controller or MES, QoS 1.

paho-mqtt's network thread connects and reconnects in the background (capped backoff), so a
broker that is down never blocks scoring. Messages not yet acknowledged by the broker, including
those published while it was away, stay in paho's queue and are sent again after a reconnect;
the queue is bounded (`mqtt_buffer`), and a verdict that finds it full is counted as dropped
instead of growing memory without limit.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from ...errors import UniadError
from ..mqtt_url import MqttAddress, parse_mqtt_url
from ..record import MESSAGE, VerdictRecord
from .base import Sink, SinkContext, Verdict

log = logging.getLogger(__name__)


def connect_client(
    address: MqttAddress, client_id: str, buffer: int = 0, **callbacks: Callable[..., Any]
) -> Any:
    """A paho client connecting in the background with capped reconnect backoff. `callbacks`
    (on_connect=..., on_message=...) are set before the network thread starts, so none of
    its events can come before its handler."""
    try:
        import paho.mqtt.client as paho
    except ImportError:
        raise UniadError(
            "MQTT needs paho-mqtt: pip install 'uniad-edge[mqtt]' (or pip install paho-mqtt)"
        ) from None
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
    if address.username:
        client.username_pw_set(address.username, address.password)
    for name, callback in callbacks.items():
        setattr(client, name, callback)
    client.reconnect_delay_set(min_delay=1, max_delay=8)
    if buffer:
        client.max_queued_messages_set(buffer)
    client.connect_async(address.host, address.port, keepalive=30)
    client.loop_start()
    return client


def message(record: VerdictRecord) -> bytes:
    """The published payload: the record's fields a PLC/MES needs (`MESSAGE`), not the
    latency details."""
    return json.dumps(record.fields_for(MESSAGE)).encode()


class MqttSink(Sink):
    name = "mqtt"

    def __init__(
        self, address: MqttAddress, buffer: int, station_name: str, drain_s: float = 10.0
    ) -> None:
        if buffer < 1:
            raise UniadError(f"mqtt_buffer must be >= 1, got {buffer}")
        self.address = address
        self.drain_s = drain_s
        self.connected = threading.Event()
        self.published = 0
        self.acknowledged = 0
        self.dropped = 0
        self.unsent = 0
        self.closing = False
        self._warned_full = False
        client_id = f"uniad-edge-{station_name}-{uuid.uuid4().hex[:8]}"
        self.client = connect_client(
            address,
            client_id,
            buffer,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            on_publish=self._on_publish,
        )

    def _on_connect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any):
        if reason.is_failure:
            log.warning("MQTT broker %s refused the connection: %s", self.address, reason)
            return
        self.connected.set()
        log.info("MQTT connected to %s", self.address)

    def _on_publish(self, *_args: Any) -> None:
        self.acknowledged += 1

    def _on_disconnect(self, *_args: Any) -> None:
        if self.connected.is_set() and not self.closing:
            log.warning("MQTT broker %s lost; reconnecting in the background", self.address)
        self.connected.clear()

    def emit(self, verdict: Verdict) -> None:
        import paho.mqtt.client as paho

        info = self.client.publish(self.address.topic, message(verdict.record), qos=1)
        if info.rc == paho.MQTT_ERR_QUEUE_SIZE:
            self.dropped += 1
            if not self._warned_full:
                self._warned_full = True
                log.warning(
                    "MQTT buffer full (broker %s unreachable); dropping verdicts until it is back",
                    self.address,
                )
            return
        self._warned_full = False
        self.published += 1

    def pending(self) -> int:
        """Published messages the broker has not acknowledged yet."""
        return len(self.client._out_messages)  # paho keeps no public count

    def close(self) -> None:
        """Give unacknowledged messages `drain_s` seconds to reach the broker, then disconnect."""
        deadline = time.monotonic() + self.drain_s
        warned = False
        while self.pending() and time.monotonic() < deadline:
            if not warned and time.monotonic() > deadline - self.drain_s + 1.0:
                warned = True  # only when it takes long: a healthy broker acks within ms
                log.warning(
                    "waiting up to %g s for %d unacknowledged MQTT verdicts to reach %s",
                    self.drain_s,
                    self.pending(),
                    self.address,
                )
            time.sleep(0.05)
        self.unsent = self.pending()
        self.closing = True
        self.client.disconnect()
        self.client.loop_stop()

    def summary(self) -> dict[str, int]:
        return {
            "MQTT verdicts acknowledged": self.acknowledged,
            "MQTT messages dropped (buffer full)": self.dropped,
            "MQTT messages unacknowledged at exit": self.unsent if self.closing else self.pending(),
        }


def from_context(context: SinkContext) -> MqttSink | None:
    config = context.config
    if config.mqtt is None:
        return None
    return MqttSink(
        parse_mqtt_url(config.mqtt), config.mqtt_buffer, config.name, config.mqtt_drain_s
    )
