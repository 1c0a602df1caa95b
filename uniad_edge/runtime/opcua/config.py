"""`[opcua]` / `--opcua URL`: where the OPC UA server listens and who may connect.

Open access (anonymous users on SecurityPolicy None) is allowed on loopback only. An endpoint
other machines can reach needs a user and password, or a certificate and key (then only
Basic256Sha256 endpoints are offered), or both; otherwise it is refused before anything starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ...errors import UniadError
from ...hosts import is_loopback
from ...redact import redact_url

DEFAULT_PORT = 4840
NAMESPACE_URI = "urn:uniad-edge:station"  # stable: clients resolve the namespace index by it
PASSWORD_ENV = "UNIAD_EDGE_OPCUA_PASSWORD"


@dataclass
class OpcuaConfig:
    """The OPC UA server of a station. `cert`/`key` are PEM or DER files (Basic256Sha256)."""

    url: str
    user: str | None = None
    password: str | None = None
    cert: Path | None = None
    key: Path | None = None
    trigger_timeout_s: float = 10.0  # how long the Trigger method waits for its verdict
    # Clients connected at once; asyncua refuses the next one (its own default, 1000, is above
    # a default open-file limit of 1024). A connection must activate a session within
    # asyncua's 30 s, and an idle session ends after its timeout (at most 600 s).
    max_clients: int = 64

    def __post_init__(self) -> None:
        self.cert = Path(self.cert) if self.cert is not None else None
        self.key = Path(self.key) if self.key is not None else None
        if self.user is not None and self.password is None:  # kept out of files and argv
            self.password = os.environ.get(PASSWORD_ENV)
        host, port = self.address  # a malformed URL fails here
        if (self.user is None) != (self.password is None):
            raise UniadError(
                f"OPC UA {self.shown}: give --opcua-user and its password (--opcua-password or "
                f"{PASSWORD_ENV}) together"
            )
        if (self.cert is None) != (self.key is None):
            raise UniadError(
                f"OPC UA {self.shown}: give --opcua-cert and --opcua-key together (Basic256Sha256)"
            )
        if not self.loopback and self.user is None and self.cert is None:
            raise UniadError(
                f"OPC UA {self.shown} is reachable from other machines: give --opcua-user/"
                "--opcua-password and/or --opcua-cert/--opcua-key (Basic256Sha256); anonymous "
                "access is allowed on 127.0.0.1 only"
            )
        if self.max_clients < 1:
            raise UniadError(f"OPC UA max_clients must be >= 1, got {self.max_clients}")
        if self.trigger_timeout_s <= 0:
            raise UniadError(f"OPC UA trigger timeout must be > 0 s, got {self.trigger_timeout_s}")

    @property
    def shown(self) -> str:
        """The URL for messages: a user and password in it (refused) show as ***."""
        return redact_url(self.url)

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) to bind, from `opc.tcp://host[:port][/path]`."""
        parts = urlsplit(self.url)
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            port = -1
        if parts.scheme != "opc.tcp" or not parts.hostname or port < 1:
            raise UniadError(
                f"OPC UA address {self.shown!r} is not opc.tcp://host[:port][/path] (e.g. "
                "opc.tcp://127.0.0.1:4840/uniad)"
            )
        if parts.username or parts.password:
            raise UniadError(
                f"OPC UA address {self.shown!r}: pass the user with --opcua-user, not in the URL"
            )
        return parts.hostname, port

    @property
    def loopback(self) -> bool:
        return is_loopback(self.address[0])

    @property
    def anonymous(self) -> bool:
        """Anonymous users are accepted: loopback, and no user was configured."""
        return self.loopback and self.user is None

    @property
    def open_endpoint(self) -> bool:
        """SecurityPolicy None is offered: on loopback, or off it with a user but no certificate
        (the password then crosses the network in clear; `server` warns)."""
        return self.loopback or self.cert is None
