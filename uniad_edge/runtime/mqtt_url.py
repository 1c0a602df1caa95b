"""Parse `mqtt://host[:port]/topic` addresses (one place for the default port and the errors)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ..errors import UniadError
from ..redact import redact_url

DEFAULT_PORT = 1883


@dataclass(frozen=True)
class MqttAddress:
    host: str
    port: int
    topic: str
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        return f"mqtt://{self.host}:{self.port}/{self.topic}"


def parse_mqtt_url(url: str) -> MqttAddress:
    """`mqtt://[user:pass@]host[:port]/topic/path` -> MqttAddress, or a one-line error."""
    parts = urlsplit(url)
    topic = unquote(parts.path.lstrip("/"))
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        port = -1
    if parts.scheme != "mqtt" or not parts.hostname or not topic or port < 1:
        raise UniadError(
            f"MQTT address {redact_url(repr(url))} is not mqtt://host[:port]/topic (e.g. "
            "mqtt://127.0.0.1:1883/line1)"
        )
    if "+" in topic or parts.fragment or url.endswith("#"):  # urlsplit reads "#" as a fragment
        raise UniadError(
            f"MQTT address {redact_url(repr(url))}: the topic must not contain the wildcards + or #"
        )
    return MqttAddress(parts.hostname, port, topic, parts.username, parts.password)
