"""JSONL sink: one line per verdict in an append-only log that survives a full disk."""

from __future__ import annotations

from typing import Any

from ..recorder import JsonlLog
from .base import PauseOnError, Sink, SinkContext, Verdict


class JsonlSink(Sink):
    name = "jsonl"

    def __init__(self, log: JsonlLog, retry_s: float) -> None:
        self.log = log
        self.guard = PauseOnError(f"writing log {log.path}", retry_s)

    def emit(self, verdict: Verdict) -> None:
        self.guard.attempt(lambda: self.log.write(verdict.document()))

    def event(self, record: dict[str, Any]) -> None:
        self.guard.attempt(lambda: self.log.write(record))

    def close(self) -> None:
        self.log.close()

    def summary(self) -> dict[str, int]:
        return {"log records not written": self.guard.not_written}


def from_context(context: SinkContext) -> JsonlSink | None:
    config = context.config
    if config.log is None:
        return None
    return JsonlSink(JsonlLog(config.log), config.write_retry_s)
