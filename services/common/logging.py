"""Structured JSON logs on stdout with `service` on every line.

structlog renders our own events; stdlib loggers (uvicorn, rq, alembic) go
through the same formatter so every line of a process is one JSON object.
Call sites pass `event_id=` / `trace_id=` as keys.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog


def configure_logging(service: str, level: str = "INFO") -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
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
        event.pop("color_message", None)  # uvicorn's ANSI copy of the message
        return event

    return processor


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)
