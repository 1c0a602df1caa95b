"""Free loopback ports for the real services the tests (and benchmarks) start on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open while choosing, so none repeats)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def free_port() -> int:
    return free_ports(1)[0]


def held_socket(host: str = "127.0.0.1") -> socket.socket:
    """A socket bound to a free port and kept bound, for a server that takes it over (uvicorn's
    `sockets=`): no moment in which another process could take the port."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def on_a_free_port(start: Callable[[int], T], attempts: int = 5) -> T:
    """`start(port)` on a free port. Choosing a port and binding it are two steps: on a busy
    machine another server may take the port in between, so 'already in use' is retried on a
    newly chosen port (the caller learns the port from what `start` returns)."""
    for attempt in range(attempts):
        try:
            return start(free_port())
        except Exception as exc:
            if attempt == attempts - 1 or "already in use" not in str(exc).lower():
                raise
    raise AssertionError("unreachable")
