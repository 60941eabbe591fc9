"""Logs through structlog: JSON lines in production, readable lines in development.

Every standard `logging` logger (uvicorn's, SQLAlchemy's, taskiq's and the app's
`logging.getLogger(__name__)`) is rendered by the same handler, so all lines share one format and
carry the request ID (`request_id`) or the job's `job_id` and `job_kind`. Secrets are masked by
`redact.Redactor` just before a line is written.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from {{ cookiecutter.project_slug }}.observability.context import job_var, request_id_var
from {{ cookiecutter.project_slug }}.observability.redact import Redactor
from {{ cookiecutter.project_slug }}.settings import Settings

SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "taskiq")
"""Loggers that come with handlers of their own: they are emptied and propagate to ours."""


class _State:
    redactor = Redactor()
    trace_ids = False


def add_context(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Add the request ID, or the job ID and kind, of the code that logs."""
    job = job_var.get()
    if job is not None:
        event.setdefault("job_id", job.job_id)
        event.setdefault("job_kind", job.job_kind)
        if job.request_id:
            event.setdefault("request_id", job.request_id)
        return event
    request_id = request_id_var.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def add_trace_ids(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Add the current span's trace and span IDs (only while tracing is on)."""
    if _State.trace_ids:
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            event.setdefault("trace_id", format(span_context.trace_id, "032x"))
            event.setdefault("span_id", format(span_context.span_id, "016x"))
    return event


def redact(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Mask secrets in every value of the line (message, fields and formatted traceback)."""
    masked: dict[str, Any] = _State.redactor.value(event)
    return masked


def show_trace_ids(enabled: bool) -> None:
    """Add trace and span IDs to log lines from now on (tracing was started or stopped)."""
    _State.trace_ids = enabled


def configure_logging(settings: Settings, *, stream: IO[str] | None = None) -> logging.Handler:
    """Route structlog and standard logging to one handler on `stream` (stderr); return it.

    Idempotent: a second call replaces the handler of the first.
    """
    _State.redactor = Redactor.from_settings(settings)
    as_json = (settings.log_format or _default_format(settings)) == "json"
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_context,
        add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    output = stream or sys.stderr
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(
            colors=output.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )
    handler = logging.StreamHandler(output)
    handler.setFormatter(formatter)
    handler.set_name("observability")
    root = logging.getLogger()
    for old in list(root.handlers):
        # Ours from an earlier call, and plain handlers (logging.basicConfig's) that would
        # print each line a second time; test harness handlers (subclasses) stay.
        if old.get_name() == "observability" or type(old) is logging.StreamHandler:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
    engine_logger = logging.getLogger("sqlalchemy.engine.Engine")
    if not engine_logger.handlers:  # DB_ECHO: SQLAlchemy adds a handler only if none is there
        engine_logger.addHandler(logging.NullHandler())
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return handler


def _default_format(settings: Settings) -> str:
    return "json" if settings.environment == "production" else "console"
