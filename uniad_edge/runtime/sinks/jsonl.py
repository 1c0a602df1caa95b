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

    def reopen(self) -> None:
        self.log.reopen()

    def close(self) -> None:
        self.log.close()

    def summary(self) -> dict[str, int]:
        counts = {"log records not written": self.guard.not_written}
        if self.log.reopened:
            counts["log reopened (rotation, SIGHUP)"] = self.log.reopened
        return counts


def from_context(context: SinkContext) -> JsonlSink | None:
    config = context.config
    if config.log is None:
        return None
    max_bytes = None if config.log_max_mb is None else int(config.log_max_mb * 1e6)
    log = JsonlLog(config.log, max_bytes=max_bytes, keep=config.log_keep)
    return JsonlSink(log, config.write_retry_s)
