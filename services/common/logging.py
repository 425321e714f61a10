"""Structured logs on stdout with `service` on every line: JSON lines, or readable lines on a terminal.

structlog renders our own events; stdlib loggers (uvicorn, rq, alembic) go
through the same formatter so every line of a process is rendered one way.
Call sites pass `event_id=` / `trace_id=` as keys. LOG_FORMAT chooses the
rendering: `json`, `console` (structlog's ConsoleRenderer: aligned, coloured,
keys as key=value), or `auto` (console when stdout is a terminal, JSON
otherwise, so a log collector always gets JSON). `mdstack up` runs services
behind pipes, so on a terminal it hands them LOG_FORMAT=console.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

LOG_FORMATS = ("auto", "json", "console")


def use_console(log_format: str, stream: TextIO) -> bool:
    """Whether lines to `stream` are rendered for people rather than machines."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    if log_format == "auto":
        isatty = getattr(stream, "isatty", None)
        return bool(isatty and isatty())
    return log_format == "console"


def configure_logging(
    service: str, level: str = "INFO", log_format: str | None = None, stream: TextIO | None = None
) -> None:
    """`log_format` None: LOG_FORMAT from the environment's settings; `stream` None: stdout."""
    if log_format is None:
        from services.common.settings import Settings  # settings never log, so no cycle at import time

        log_format = Settings().LOG_FORMAT
    stream = stream or sys.stdout
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
    ]
    structlog.configure(
        # filter_by_level first: a debug event at INFO is dropped before the processors build it (a commit
        # and a job each log one).
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: list[structlog.types.Processor] = (
        # plain tracebacks: a rich one would print every frame's locals, secrets included
        [structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)]
        if use_console(log_format, stream)
        else [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _drop_color_message],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "rq.worker", "rq.scheduler"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Per-request and per-job lines from libraries would be thousands a second; our
    # own metrics count those. LOG_LEVEL=DEBUG lets them through.
    if root.level > logging.DEBUG:
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


CHATTY_LOGGERS = ("uvicorn.access", "httpx", "httpcore", "rq.worker", "rq.job", "rq.scheduler", "pgserver", "alembic")


def library_level() -> str:
    """The level for libraries that set their own (RQ's worker)."""
    return "DEBUG" if logging.getLogger().level <= logging.DEBUG else "WARNING"


def _add_service(service: str) -> structlog.types.Processor:
    def processor(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event.setdefault("service", service)
        return event

    return processor


def _drop_color_message(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event.pop("color_message", None)  # uvicorn's ANSI copy of the message, added as an `extra`
    return event


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
