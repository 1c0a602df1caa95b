"""The station's OPC UA server (asyncua) on its own thread and event loop.

Scoring never waits for OPC UA: `publish` only stores a camera's newest values and wakes the
server's loop, which writes them. A client that is slow or gone costs the server's loop, never
the station's threads; if the loop falls behind, a camera's older unwritten verdict is replaced by
its newer one (counted as `superseded`; the counters inside the values stay exact).

All of a camera's variables from one verdict go in one Write service call, each value carrying
the frame's capture time as its source timestamp. The write runs on the loop without yielding, so
no read, publish or method call can see half of it: a client never pairs one part's score with
another part's verdict.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from typing import Any

from ...errors import UniadError
from ..part_id import check_part_id
from ..record import VerdictRecord
from .config import NAMESPACE_URI, OpcuaConfig
from .values import (
    CAMERA_VARIABLES,
    STATION_VARIABLES,
    camera_state,
    finite_or_nan,
)

log = logging.getLogger(__name__)
STARTUP_TIMEOUT_S = 120.0
STATE_POLL_S = 0.25
NEVER = datetime(1601, 1, 1, tzinfo=timezone.utc)  # OPC UA's "no time yet"

Trigger = Callable[[str, "str | None"], "Future[VerdictRecord]"]


def _import_asyncua() -> Any:
    try:
        import asyncua
    except ImportError:
        raise UniadError(
            "OPC UA needs asyncua: pip install 'uniad-edge[opcua]' (or pip install asyncua)"
        ) from None
    return asyncua


@contextmanager
def _quiet(logger_name: str):
    """asyncua logs a traceback when it cannot bind; the station says it in one line instead."""
    logger = logging.getLogger(logger_name)
    before = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = before


class _Users:
    """asyncua user manager: the configured user with its password; no remote admin."""

    def __init__(self, config: OpcuaConfig) -> None:
        self.config = config

    def get_user(self, iserver: Any, username=None, password=None, certificate=None) -> Any:
        import secrets

        from asyncua.crypto.permission_rules import User, UserRole

        config = self.config
        if config.user is None:
            return User(role=UserRole.User) if username is None else None
        if username is None or password is None:
            return None
        same_user = secrets.compare_digest(str(username).encode(), config.user.encode())
        given = password if isinstance(password, bytes) else str(password).encode()
        same_password = secrets.compare_digest(given, str(config.password).encode())
        return User(role=UserRole.User, name=username) if same_user and same_password else None


class OpcuaServer:
    """One OPC UA server per station: a `Station` object, a `Cameras` folder with one object
    per camera (variables in `values.CAMERA_VARIABLES`, a `Trigger(PartId)` method)."""

    def __init__(
        self,
        config: OpcuaConfig,
        station: str,
        cameras: Sequence[str],
        *,
        trigger: Trigger,
        states: Callable[[], Mapping[str, str]],
        model_id: Callable[[], str],
        provenance: Callable[[], str],
    ) -> None:
        _import_asyncua()
        self.config = config
        self.station = station
        self.cameras = tuple(cameras)
        self._trigger = trigger
        self._states = states
        self._station_now = lambda: {"ModelId": model_id(), "ThresholdProvenance": provenance()}
        self._station_values: dict[str, Any] = {
            "Name": station,
            **self._station_now(),
        }
        self._lock = threading.Lock()
        self._pending: dict[str, dict[str, Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="uniad-opcua", daemon=True)
        self._nodes: dict[str, Any] = {}  # "Cameras.top.Score" / "Station.ModelId" -> NodeId
        self.written = 0
        self.superseded = 0
        self.write_errors = 0
        self.started_at = time.time()

    # -- called from the station's threads -------------------------------------------------

    def start(self) -> OpcuaServer:
        """Listen now; a server that cannot bind raises a one-line `UniadError`."""
        self._thread.start()
        if not self._ready.wait(STARTUP_TIMEOUT_S):
            raise UniadError(f"OPC UA server {self.config.url} did not start in time")
        if self._startup_error is not None:
            self._thread.join()
            raise UniadError(self._why_not(self._startup_error)) from None
        log.info("OPC UA server listening on %s", self.config.url)
        return self

    def _why_not(self, exc: BaseException) -> str:
        host, port = self.config.address
        if isinstance(exc, OSError):
            return (
                f"OPC UA server cannot listen on {host}:{port}: {exc.strerror or exc} "
                "(another server on that port? use another --opcua port)"
            )
        if isinstance(exc, UniadError):
            return str(exc)
        return f"OPC UA server {self.config.url} failed to start: {exc}"

    def publish(self, camera: str, values: dict[str, Any]) -> None:
        """Hand over one verdict's values (see `values.camera_values`); never blocks."""
        with self._lock:
            if camera in self._pending:
                self.superseded += 1
            self._pending[camera] = values
        self._poke()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with suppress(RuntimeError):  # the loop closed meanwhile: the server is going away
                loop.call_soon_threadsafe(wake.set)

    def close(self) -> None:
        """Write what is pending, then stop listening and end the thread."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            with suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def summary(self) -> dict[str, int]:
        counts = {"OPC UA verdicts written": self.written}
        if self.superseded:
            counts["OPC UA verdicts superseded"] = self.superseded
        if self.write_errors:
            counts["OPC UA write errors"] = self.write_errors
        return counts

    # -- the server's own thread -----------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(loop))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self, loop: asyncio.AbstractEventLoop) -> None:
        self._wake, self._stop = asyncio.Event(), asyncio.Event()
        try:
            server = await self._build()
            with _quiet("asyncua.server.server"):
                await server.start()
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            return
        self._loop = loop
        self._ready.set()
        try:
            await self._serve()
        finally:
            self._loop = None
            await self._flush()
            with _quiet("asyncua"):
                await server.stop()

    async def _serve(self) -> None:
        assert self._wake is not None and self._stop is not None
        next_tick = 0.0
        states: dict[str, str] = {}
        while not self._stop.is_set():
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), STATE_POLL_S)
            self._wake.clear()
            await self._flush()
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + STATE_POLL_S
                states = await self._write_states(states)

    async def _build(self) -> Any:
        from asyncua import Server, ua

        config = self.config
        server = Server(user_manager=_Users(config))
        await server.init()
        server.iserver.max_connections = config.max_clients
        server.set_endpoint(config.url)
        server.set_server_name(f"uniad-edge {self.station}")
        await server.set_application_uri(f"urn:uniad-edge:server:{self.station}")
        policies = []
        if config.open_endpoint:
            policies.append(ua.SecurityPolicyType.NoSecurity)
        if config.cert is not None and config.key is not None:
            try:
                await server.load_certificate(str(config.cert))
                await server.load_private_key(str(config.key))
            except (OSError, ValueError) as exc:
                raise UniadError(
                    f"OPC UA certificate {config.cert} or key {config.key} cannot be read: {exc}"
                ) from None
            policies += [
                ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                ua.SecurityPolicyType.Basic256Sha256_Sign,
            ]
        server.set_security_policy(policies)
        tokens = [ua.AnonymousIdentityToken] if config.anonymous else []
        if config.user is not None:
            tokens.append(ua.UserNameIdentityToken)
        elif not config.anonymous:  # off loopback with a certificate only
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        if not config.loopback and config.cert is None:
            log.warning(
                "OPC UA %s: without --opcua-cert/--opcua-key the password crosses the network "
                "in clear; add a certificate for Basic256Sha256",
                config.url,
            )
        await self._address_space(server)
        return server

    async def _address_space(self, server: Any) -> None:
        from asyncua import ua

        idx = await server.register_namespace(NAMESPACE_URI)
        self._server = server
        objects = server.nodes.objects
        station = await objects.add_object(
            ua.NodeId("Station", idx), ua.QualifiedName("Station", idx)
        )
        initial = {**self._station_values, "StartTime": self.started_at, "Uptime": 0.0}
        for name, kind in STATION_VARIABLES.items():
            await self._variable(station, f"Station.{name}", name, kind, initial[name], idx)
        folder = await objects.add_folder(
            ua.NodeId("Cameras", idx), ua.QualifiedName("Cameras", idx)
        )
        for camera in self.cameras:
            node = await folder.add_object(
                ua.NodeId(f"Cameras.{camera}", idx), ua.QualifiedName(camera, idx)
            )
            for name, kind in CAMERA_VARIABLES.items():
                await self._variable(node, f"Cameras.{camera}.{name}", name, kind, None, idx)
            await node.add_method(
                ua.NodeId(f"Cameras.{camera}.Trigger", idx),
                ua.QualifiedName("Trigger", idx),
                self._trigger_method(camera),
                [_argument("PartId", ua.ObjectIds.String, "part id for the record ('' for none)")],
                [
                    _argument("Verdict", ua.ObjectIds.String, "OK, NG or ERROR"),
                    _argument("Score", ua.ObjectIds.Double, "raw score (NaN if not scored)"),
                    _argument("FrameIndex", ua.ObjectIds.UInt64, "index of the scored frame"),
                ],
            )

    async def _variable(
        self, parent: Any, key: str, name: str, kind: str, value: Any, idx: int
    ) -> None:
        from asyncua import ua

        variant = _variant(kind, value)
        node = await parent.add_variable(ua.NodeId(key, idx), ua.QualifiedName(name, idx), variant)
        self._nodes[key] = node.nodeid

    def _trigger_method(self, camera: str) -> Callable[..., Any]:
        async def trigger(_parent: Any, *arguments: Any) -> Any:
            from asyncua import ua

            try:
                part_id = _part_id_argument(arguments)
            except _Refused as refused:
                log.warning("OPC UA Trigger on %s refused: %s", camera, refused.why)
                return refused.result()
            try:
                future = self._trigger(camera, part_id)
                record = await asyncio.wait_for(
                    asyncio.wrap_future(future), self.config.trigger_timeout_s
                )
            except asyncio.TimeoutError:
                return ua.StatusCode(ua.StatusCodes.BadTimeout)
            except UniadError as exc:
                log.warning("OPC UA Trigger on %s: %s", camera, exc)
                return ua.StatusCode(ua.StatusCodes.BadInvalidState)
            score = record.get("score")
            return [
                ua.Variant(record.kind, ua.VariantType.String),
                ua.Variant(finite_or_nan(score), ua.VariantType.Double),
                ua.Variant(int(record["index"]), ua.VariantType.UInt64),
            ]

        return trigger

    async def _flush(self) -> None:
        """Write every camera's newest values, one Write call per camera, and station values."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for camera, values in pending.items():
            stamp = datetime.fromtimestamp(values["SourceTimestamp"], timezone.utc)
            await self._write(
                {f"Cameras.{camera}.{k}": (CAMERA_VARIABLES[k], v) for k, v in values.items()},
                stamp,
            )

    async def _write_states(self, before: dict[str, str]) -> dict[str, str]:
        """Camera `State` variables and the station's ModelId and ThresholdProvenance (written
        when they change), and its Uptime."""
        now = datetime.now(timezone.utc)
        try:
            states = {name: camera_state(status) for name, status in self._states().items()}
            station = self._station_now()
        except Exception:
            log.exception("reading the station's state for OPC UA failed")
            states, station = before, {}
        changed = {
            f"Cameras.{name}.State": ("String", state)
            for name, state in states.items()
            if before.get(name) != state and name in self.cameras
        }
        for name, value in station.items():
            if value != self._station_values[name]:
                self._station_values[name] = value
                changed[f"Station.{name}"] = ("String", value)
        changed["Station.Uptime"] = ("Double", round(time.time() - self.started_at, 1))
        await self._write(changed, now)
        return states

    async def _write(self, values: dict[str, tuple[str, Any]], stamp: datetime) -> None:
        """One Write service call with every value, all stamped `stamp` as source time."""
        from asyncua import ua

        nodes = [
            ua.WriteValue(
                NodeId=self._nodes[key],
                AttributeId=ua.AttributeIds.Value,
                Value=ua.DataValue(_variant(kind, value), SourceTimestamp=stamp),
            )
            for key, (kind, value) in values.items()
        ]
        params = ua.WriteParameters(NodesToWrite=nodes)
        results = await self._server.iserver.isession.write(params)
        bad = [str(r) for r in results if not r.is_good()]
        if bad:
            self.write_errors += 1
            log.warning("OPC UA write refused: %s", ", ".join(sorted(set(bad))))
        elif any(key.startswith("Cameras.") and key.endswith(".Verdict") for key in values):
            self.written += 1


class _Refused(Exception):
    """A Trigger call whose arguments are refused: the method's status, the argument's status
    (None when the count is wrong) and why, for one log line."""

    def __init__(self, status: str, why: str, argument: str | None = None) -> None:
        super().__init__(why)
        self.status, self.why, self.argument = status, why, argument

    def result(self) -> Any:
        from asyncua import ua

        result = ua.CallMethodResult()
        result.StatusCode = ua.StatusCode(getattr(ua.StatusCodes, self.status))
        if self.argument is not None:
            result.InputArgumentResults = [ua.StatusCode(getattr(ua.StatusCodes, self.argument))]
        return result


def _part_id_argument(arguments: Sequence[Any]) -> str | None:
    """Trigger's one argument: a scalar String (empty or null for no part id) that passes the
    part-id rule every trigger follows (`part_id.check_part_id`); otherwise `_Refused`."""
    from asyncua import ua

    if not arguments:
        raise _Refused("BadArgumentsMissing", "no PartId argument (send '' for none)")
    if len(arguments) > 1:
        raise _Refused("BadTooManyArguments", f"{len(arguments)} arguments; Trigger takes one")
    (variant,) = arguments
    value = variant.Value
    if variant.VariantType != ua.VariantType.String or isinstance(value, list):
        kind = f"{variant.VariantType.name}{' array' if isinstance(value, list) else ''}"
        raise _Refused("BadInvalidArgument", f"PartId is {kind}, not a String", "BadTypeMismatch")
    try:
        return check_part_id(value)
    except UniadError as exc:
        raise _Refused("BadInvalidArgument", str(exc), "BadOutOfRange") from None


def _variant(kind: str, value: Any) -> Any:
    """A typed OPC UA Variant; None gives the type's empty value (DateTime: 1601-01-01)."""
    from asyncua import ua

    variant_type = getattr(ua.VariantType, kind)
    if kind == "DateTime":
        value = NEVER if value is None else datetime.fromtimestamp(value, timezone.utc)
    elif value is None:
        value = {"String": "", "Boolean": False, "Double": math.nan}.get(kind, 0)
    return ua.Variant(value, variant_type)


def _argument(name: str, type_id: int, description: str) -> Any:
    from asyncua import ua

    argument = ua.Argument()
    argument.Name = name
    argument.DataType = ua.NodeId(type_id)
    argument.ValueRank = -1
    argument.Description = ua.LocalizedText(description)
    return argument
