"""The OPC UA options `run` and `serve` share (one definition, one help text)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .options import given

OpcuaUrl = Annotated[
    str | None,
    typer.Option(
        "--opcua",
        help="serve verdicts to PLCs over OPC UA at opc.tcp://host:port/path (anonymous on "
        "loopback only)",
    ),
]
OpcuaUser = Annotated[str | None, typer.Option(help="OPC UA user clients must log in as")]
OpcuaPassword = Annotated[
    str | None,
    typer.Option(
        envvar="UNIAD_EDGE_OPCUA_PASSWORD",
        help="password of --opcua-user (env UNIAD_EDGE_OPCUA_PASSWORD keeps it out of the "
        "process list)",
    ),
]
OpcuaCert = Annotated[
    Path | None, typer.Option(help="OPC UA server certificate (PEM/DER): Basic256Sha256")
]
OpcuaKey = Annotated[Path | None, typer.Option(help="private key of --opcua-cert")]


def opcua_config(
    url: str | None,
    user: str | None = None,
    password: str | None = None,
    cert: Path | None = None,
    key: Path | None = None,
) -> Any:
    """`--opcua URL` and its security options as an `OpcuaConfig` (None without a URL)."""
    from ..errors import UniadError
    from ..runtime.opcua.config import OpcuaConfig

    if url is None:
        if user is not None or cert is not None or key is not None:
            raise UniadError("--opcua-user/--opcua-cert/--opcua-key need --opcua URL")
        return None
    return OpcuaConfig(url, **given(user=user, password=password, cert=cert, key=key))
