"""Logging: one line per event, as text or JSON (`MEDIAHUB_LOG_FORMAT`), with the context of
the request or job that logged it (docs/operations.md, "Logs").

The context lives in contextvars: the request middleware (`gateway.core.observe`) sets the
request id, authentication adds the tenant and customer, and the generation worker the
generation and the provider it calls. A record's own `extra={...}` of the same name wins.

What is never logged: media bytes and secrets. Nothing here formats request or response
bodies, and settings hide their secrets in `repr`; a JSON line carries the record's message
and the fields below only, never arbitrary attributes.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any, Final

#: The context fields every line carries (None when not known).
CONTEXT_FIELDS: Final = ("request_id", "tenant_id", "customer_id", "generation_id", "provider")

_context: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"mediahub_log_{name}", default=None) for name in CONTEXT_FIELDS
}

LOG_FORMATS: Final = ("text", "json")


def bind(**fields: str | None) -> None:
    """Set context fields for the rest of the current task (and the tasks it starts);
    called by the request middleware, authentication and the worker."""
    for name, value in fields.items():
        _context[name].set(value)


def begin_request(request_id: str) -> None:
    """A fresh context for one request: its id, nothing else (a keep-alive connection's
    task serves many requests)."""
    for name, var in _context.items():
        var.set(request_id if name == "request_id" else None)


def current() -> dict[str, str | None]:
    """The context fields as they are now (what a log line would carry)."""
    return {name: var.get() for name, var in _context.items()}


class ContextFilter(logging.Filter):
    """Copies the context onto each record (unless the record names the field itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _context.items():
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


def _trace_ids() -> tuple[str | None, str | None]:
    # Only when tracing is on does a valid span exist; the API's no-op span is invalid.
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601 with milliseconds), level, logger,
    event (the message), the context fields, trace ids when tracing, and the exception."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.gmtime(record.created)
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            line[name] = getattr(record, name, None)
        trace_id, span_id = _trace_ids()
        if trace_id is not None:
            line["trace_id"], line["span_id"] = trace_id, span_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # json.dumps escapes newlines: a traceback stays on its one line.
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The human format: time, level, logger, message, then the context fields that are set."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = " ".join(f"{name}={value}" for name in CONTEXT_FIELDS
                          if (value := getattr(record, name, None)) is not None)
        return f"{text} [{fields}]" if fields else text


def log_format_from(env: Mapping[str, str]) -> str:
    """`MEDIAHUB_LOG_FORMAT` as given, or `text` (a bad value is reported by the settings)."""
    value = env.get("MEDIAHUB_LOG_FORMAT", "").strip().lower()
    return value if value in LOG_FORMATS else "text"


def configure(log_format: str = "text", level: int = logging.INFO) -> logging.Handler:
    """Route every log record through one stderr handler in `log_format`; called once by
    the `mediahub` command at start. Returns the handler (replacing any earlier one)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
