"""Traces through OpenTelemetry, on only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

The standard variables configure the exporter (OTLP over http/protobuf): the endpoint (or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`; `OTEL_SDK_DISABLED=true` turns it off.
FastAPI requests, SQLAlchemy statements and httpx requests get spans; a job's span is linked to
the span of the request that submitted it (the trace context travels in the job's row).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Link, SpanKind, StatusCode
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.project_slug }}.observability.logs import show_trace_ids
from {{ cookiecutter.project_slug }}.settings import Settings

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
SERVICE_NAME = "{{ cookiecutter.project_slug }}"
"""`service.name` unless `OTEL_SERVICE_NAME` says otherwise."""
UNTRACED_URLS = "/metrics,/health"
"""Requests that get no span (scrapes and probes)."""


class _State:
    provider: TracerProvider | None = None


def tracing_configured() -> bool:
    """Whether the environment asks for traces (an OTLP endpoint, and the SDK not disabled)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def start_tracing(
    settings: Settings, *, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """Start tracing for this process, once; None when it is off.

    `exporter` (tests: the SDK's `InMemorySpanExporter`) replaces the OTLP exporter, receives
    each span as it ends, and is not installed as the global tracer provider.
    """
    if _State.provider is not None:
        return _State.provider
    if exporter is None and not tracing_configured():
        return None
    attributes: dict[str, Any] = {"deployment.environment.name": settings.environment}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = SERVICE_NAME
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter is None:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    _State.provider = provider
    show_trace_ids(True)
    return provider


def stop_tracing() -> None:
    """Flush and stop tracing (tests; the SDK flushes at exit on its own)."""
    provider, _State.provider = _State.provider, None
    if provider is None:
        return
    HTTPXClientInstrumentor().uninstrument()
    EngineTracer.remove_all_event_listeners()  # type: ignore[no-untyped-call]
    show_trace_ids(False)
    provider.shutdown()


def instrument_app(app: FastAPI) -> None:
    """Give each request of `app` a server span (when tracing is on)."""
    if _State.provider is not None:
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=_State.provider, excluded_urls=UNTRACED_URLS
        )


def instrument_engine(engine: AsyncEngine) -> None:
    """Give each SQL statement of `engine` a span (when tracing is on)."""
    if _State.provider is None:
        return
    tracer = _State.provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
    usage = NoOpMeter("unused").create_up_down_counter("db.client.connections.usage")
    # Pool figures come from metrics.py; the instrumentation's own are dropped (a no-op meter).
    EngineTracer(tracer, engine.sync_engine, usage)  # type: ignore[no-untyped-call]


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`), for a job's row."""
    headers: dict[str, str] = {}
    if _State.provider is not None:
        propagate.inject(headers)
    return headers


@contextmanager
def job_span(job_id: uuid.UUID, kind: str, origin: Mapping[str, Any]) -> Iterator[None]:
    """A span for one attempt of a job, linked to the span of the request that submitted it."""
    if _State.provider is None:
        yield
        return
    submitted = trace.get_current_span(propagate.extract(dict(origin))).get_span_context()
    links = [Link(submitted)] if submitted.is_valid else []
    tracer = _State.provider.get_tracer(__name__)
    attributes = {"job.id": str(job_id), "job.kind": kind}
    with tracer.start_as_current_span(
        f"job {kind}", kind=SpanKind.CONSUMER, links=links, attributes=attributes
    ):
        yield


def mark_job_status(status: str, *, failed: bool) -> None:
    """Record the job's final status on its span."""
    span = trace.get_current_span()
    span.set_attribute("job.status", status)
    if failed:
        span.set_status(StatusCode.ERROR, status)
