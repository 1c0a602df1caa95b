"""Bounds on connections, so no client (a token is checked only once a request head has
arrived) can exhaust the server's file descriptors.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) and caps the size of a
request head (`h11_max_incomplete_event_size`), but it has no deadline for the head itself and
no cap on open connections: its `limit_concurrency` answers 503 only once a head arrives, so
thousands of half-open connections keep their descriptors until accept() fails with EMFILE,
and asyncio then logs a traceback per failed accept (hundreds of thousands of lines).

`BoundedH11` (uvicorn's h11 protocol) adds both: a connection has `header_timeout_s` to send a
complete request head (at the start and again between keep-alive requests) and then
`body_timeout_s` to send the whole body (else a client trickling a byte at a time would keep a
request, which is never closed to make room, forever), and beyond
`max_connections` the connection that has waited longest for its head is closed (a new client
is served, not starved by the idle ones); when every connection is busy with a request, the new
one is closed. `quiet_accept_errors` turns the EMFILE flood into one line a minute.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("uniad_edge.serve")
REPORT_EVERY_S = 60.0
OUT_OF_FILES = (errno.EMFILE, errno.ENFILE)
RESERVED_FILES = 64  # model, log, evidence, cameras, MQTT, OPC UA: descriptors besides clients


class EveryMinute:
    """A warning logged at most once per `period_s`; the next one counts those held back."""

    def __init__(self, period_s: float = REPORT_EVERY_S) -> None:
        self.period_s = period_s
        self.last = -period_s
        self.held = 0

    def warning(self, text: str) -> None:
        now = time.monotonic()
        if now - self.last < self.period_s:
            self.held += 1
            return
        more = f" ({self.held} more since the last such line)" if self.held else ""
        log.warning("%s%s", text, more)
        self.last, self.held = now, 0


class BoundedH11(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and a connection cap (the class
    attributes are set per server by `bounded_protocol`)."""

    max_connections = 256
    header_timeout_s = 10.0
    body_timeout_s = 60.0
    report = EveryMinute()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waiting_since: float | None = None  # waiting for a request head since
        self.head_timer: asyncio.TimerHandle | None = None
        self.body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_head()
        if len(self.connections) > self.max_connections:
            self._make_room()

    def _make_room(self) -> None:
        waiting = [c for c in self.connections if getattr(c, "waiting_since", None) is not None]
        oldest = min(waiting, key=lambda c: c.waiting_since)  # this one waits too
        if oldest is not self:
            oldest._stop_waiting()  # closing: it leaves `connections` only on the next tick
            oldest.transport.close()
            what = "closed the one that waited longest for its request head"
        else:  # the others are all busy with requests
            self.transport.close()
            what = "every connection is busy with a request, so new ones are closed"
        self.report.warning(
            f"connection limit ({self.max_connections}, --max-connections) reached: {what}"
        )

    def _wait_for_head(self) -> None:
        self._stop_waiting()
        self.waiting_since = time.monotonic()
        self.head_timer = self.loop.call_later(self.header_timeout_s, self._head_overdue)

    def _stop_waiting(self) -> None:
        self.waiting_since = None
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_overdue(self) -> None:
        self.head_timer = None
        if self.waiting_since is not None and not self.transport.is_closing():
            self.transport.close()  # no answer: a client this slow is not reading one

    def _body_overdue(self) -> None:
        self.body_timer = None
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            self.transport.close()  # the handler reading the body sees a disconnect
            self.report.warning(
                f"a request body did not arrive within {self.body_timeout_s:g} s "
                "(--body-timeout); its connection was closed"
            )

    def _stop_body_timer(self) -> None:
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        if self.waiting_since is not None and state is not h11.IDLE:
            self._stop_waiting()  # a whole request head arrived
            if state is h11.SEND_BODY:
                self.body_timer = self.loop.call_later(self.body_timeout_s, self._body_overdue)
        if state is not h11.SEND_BODY:
            self._stop_body_timer()  # the whole body arrived

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._wait_for_head()  # the next request's head has the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        self._stop_body_timer()
        super().connection_lost(exc)


def bounded_protocol(
    max_connections: int, header_timeout_s: float, body_timeout_s: float
) -> type[BoundedH11]:
    """`BoundedH11` with this server's limits (uvicorn creates one protocol per connection)."""
    limits = {
        "max_connections": max_connections,
        "header_timeout_s": header_timeout_s,
        "body_timeout_s": body_timeout_s,
    }
    return type("BoundedH11", (BoundedH11,), {**limits, "report": EveryMinute()})


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Out of file descriptors, asyncio logs a traceback for every failed accept() (and,
    in Python 3.11, retries up to the listen backlog each time): one line a minute instead.
    Anything else goes to the loop's default handler."""
    report = EveryMinute()

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in OUT_OF_FILES:
            report.warning(
                "out of file descriptors: new connections wait until some close; raise the "
                "open-file limit (ulimit -n) or lower --max-connections"
            )
            return
        if isinstance(exc, ValueError) and "_start_serving" in str(context.get("message")):
            return  # such a retry found the listening socket already closed at shutdown
        loop.default_exception_handler(context)

    loop.set_exception_handler(handle)


def raise_open_file_limit(max_connections: int) -> None:
    """Raise the soft open-file limit towards what `max_connections` needs (up to the hard
    limit), and say so once when even the hard limit is lower."""
    try:
        import resource
    except ImportError:  # not Unix: nothing to raise
        return
    needed = 2 * max_connections + RESERVED_FILES  # a burst: closed ones free theirs a tick late
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
        if soft < needed:
            log.warning(
                "the open-file limit (%d) is below twice --max-connections %d plus %d for the "
                "station; raise it (ulimit -n) or lower --max-connections",
                soft,
                max_connections,
                RESERVED_FILES,
            )
