"""Logging set-up shared by the services: JSON lines for collectors, a readable line on a terminal.

Every record carries the service's name and the ids of the work in hand: the task
and session a line is about, bound with `log_context` (context variables, so they
follow the work through every `await` and into the asyncio tasks it starts), and a
trace id field, empty until the farm traces its work.
"""

import contextlib
import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator
from enum import StrEnum
from typing import TextIO

from farm_core.redaction import redact_urls

task_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("farm_task_id", default="")
session_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("farm_session_id", default="")
trace_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("farm_trace_id", default="")

# The attributes ContextFilter puts on every record, and the JSON fields that carry them.
CONTEXT_FIELDS = ("service", "task_id", "session_id", "trace_id")


class LogFormat(StrEnum):
    """How log lines are written: `auto` is text on a terminal, JSON elsewhere."""

    AUTO = "auto"
    JSON = "json"
    TEXT = "text"


@contextlib.contextmanager
def log_context(*, task_id: str | None = None, session_id: str | None = None) -> Iterator[None]:
    """Every line logged inside names `task_id` and/or `session_id` (None leaves one as it is)."""
    bound: list[tuple[contextvars.ContextVar[str], contextvars.Token[str]]] = []
    for variable, value in ((task_id_var, task_id), (session_id_var, session_id)):
        if value is not None:
            bound.append((variable, variable.set(value)))
    try:
        yield
    finally:
        for variable, token in reversed(bound):
            variable.reset(token)


class ContextFilter(logging.Filter):
    """Puts the service's name and the bound task, session and trace ids on each record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self._service
        record.task_id = task_id_var.get()
        record.session_id = session_id_var.get()
        record.trace_id = trace_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, service, logger, message, the ids."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_urls(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            entry[name] = str(getattr(record, name, ""))
        if record.exc_info:
            entry["exception"] = redact_urls(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time level service logger: message`, then `task=… session=…` when bound."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(service)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = redact_urls(super().format(record))
        ids = [
            f"{label}={value}"
            for label, value in (
                ("task", getattr(record, "task_id", "")),
                ("session", getattr(record, "session_id", "")),
                ("trace", getattr(record, "trace_id", "")),
            )
            if value
        ]
        if not ids:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first} [{' '.join(ids)}]{newline}{rest}"


class HarmlessNoiseFilter(logging.Filter):
    """Drops warnings libraries log about nothing the farm can act on."""

    # nats-py connects in plain text and upgrades to TLS afterwards (start_tls), so
    # asyncio's stream protocol never learns it is over TLS: each TLS connection the
    # peer closes (every one at a farm's stop with --tls) logged this as a warning.
    _ASYNCIO_TLS_EOF = "returning true from eof_received() has no effect when using ssl"

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "asyncio" and record.getMessage() == self._ASYNCIO_TLS_EOF)


def chosen_format(log_format: LogFormat | str, stream: TextIO) -> LogFormat:
    """`log_format`, with `auto` resolved: text when `stream` is a terminal, else JSON."""
    wanted = LogFormat(log_format)
    if wanted is not LogFormat.AUTO:
        return wanted
    return LogFormat.TEXT if stream.isatty() else LogFormat.JSON


def configure_logging(
    service: str,
    level: str = "INFO",
    log_format: LogFormat | str = LogFormat.AUTO,
    stream: TextIO | None = None,
) -> None:
    """Sends log records to `stream` (stderr) as JSON lines, or text on a terminal."""
    target = stream or sys.stderr
    handler = logging.StreamHandler(target)
    handler.addFilter(HarmlessNoiseFilter())
    handler.addFilter(ContextFilter(service))
    formats = {LogFormat.JSON: JsonFormatter, LogFormat.TEXT: TextFormatter}
    handler.setFormatter(formats[chosen_format(log_format, target)]())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # nats is chatty at INFO about reconnects that the services log themselves.
    logging.getLogger("nats").setLevel(max(logging.WARNING, logging.getLogger().level))
