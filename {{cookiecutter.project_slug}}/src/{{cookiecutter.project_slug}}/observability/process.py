"""One call configures a process's observability: the web app's and each task worker's."""

from __future__ import annotations

from {{ cookiecutter.project_slug }}.observability.errors import start_sentry
from {{ cookiecutter.project_slug }}.observability.logs import configure_logging
from {{ cookiecutter.project_slug }}.observability.tracing import start_tracing
from {{ cookiecutter.project_slug }}.settings import Settings


def setup_process(settings: Settings) -> None:
    """Configure logging, error reports and (when `OTEL_EXPORTER_OTLP_ENDPOINT` is set) traces."""
    configure_logging(settings)
    start_sentry(settings)
    start_tracing(settings)
