"""Traces: off without an OTLP endpoint; request spans with database children; jobs linked."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncEngine

from {{ cookiecutter.project_slug }}.db import SessionFactory
from {{ cookiecutter.project_slug }}.jobs.models import Job
from {{ cookiecutter.project_slug }}.jobs.runner import JobResources
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.observability import tracing
from {{ cookiecutter.project_slug }}.outbound.client import fetch
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import api_client, settings_for
from tests.localserver import LocalServer
from tests.observability.conftest import Captured, running


@pytest.fixture
def spans(settings: Settings) -> Iterator[InMemorySpanExporter]:
    """Tracing on for the test, into memory."""
    exporter = InMemorySpanExporter()
    provider = tracing.start_tracing(settings, exporter=exporter)
    assert provider is not None
    service = provider.resource.attributes["service.name"]
    assert service == "{{ cookiecutter.project_slug }}"
    assert provider.resource.attributes["deployment.environment.name"] == settings.environment
    yield exporter
    tracing.stop_tracing()


def server_span(finished: tuple[ReadableSpan, ...], route: str) -> ReadableSpan:
    """The one server span of a request to `route` (its path parameters may name a converter:
    `{profile_id:uuid}`)."""
    found = [
        span
        for span in finished
        if span.kind is SpanKind.SERVER
        and str((span.attributes or {}).get("http.route")).replace(":uuid}", "}") == route
    ]
    assert len(found) == 1, [span.name for span in finished]
    return found[0]


def database_spans(finished: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    """The spans of SQL statements."""
    return [
        span
        for span in finished
        if span.kind is SpanKind.CLIENT
        and {"db.statement", "db.query.text"} & set(span.attributes or {})
    ]


def test_tracing_is_off_without_an_endpoint(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not tracing.tracing_configured()
    assert tracing.start_tracing(settings) is None
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert tracing.tracing_configured()
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing.tracing_configured()


async def test_a_request_span_has_database_children(
    settings: Settings, spans: InMemorySpanExporter
) -> None:
    app = create_app(settings)
    async with running(app) as client:
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200
        response = await client.get(f"/api/v1/profiles/{uuid.uuid4()}")
    assert response.status_code == 404
    finished = spans.get_finished_spans()
    servers = [span for span in finished if span.kind is SpanKind.SERVER]
    assert len(servers) == 1  # probes and scrapes get no span
    request = server_span(finished, "/api/v1/profiles/{profile_id}")
    queries = [
        span
        for span in database_spans(finished)
        if span.context is not None and span.context.trace_id == request.context.trace_id
    ]
    assert queries, [span.name for span in finished]
    assert any(
        span.parent is not None and span.parent.span_id == request.context.span_id
        for span in queries
    )
    assert any("profiles" in str(dict(span.attributes or {})) for span in queries)


async def test_a_job_span_links_to_the_request_that_submitted_it(
    settings: Settings,
    engine: AsyncEngine,
    sessions: SessionFactory,
    spans: InMemorySpanExporter,
) -> None:
    tracing.instrument_engine(engine)  # the test's engine: every session rolls back after
    app = create_app(settings)
    body = {"profiles": [{"name": "Ada", "email": "ada@example.com"}]}
    async with api_client(app, settings) as client:
        response = await client.post("/api/v1/profiles/imports", json=body)
    assert response.status_code == 202, response.text
    finished = spans.get_finished_spans()
    request = server_span(finished, "/api/v1/profiles/imports")
    jobs = [span for span in finished if span.name == "job profiles.import"]
    assert len(jobs) == 1
    job = jobs[0]
    assert job.kind is SpanKind.CONSUMER
    assert [link.context.span_id for link in job.links] == [request.context.span_id]
    assert (job.attributes or {})["job.id"] == response.json()["job_id"]
    assert (job.attributes or {})["job.status"] == "succeeded"
    children = [
        span
        for span in database_spans(finished)
        if span.parent is not None and span.parent.span_id == job.context.span_id
    ]
    assert children  # the job's own statements
    async with sessions() as session:
        row = await session.get(Job, uuid.UUID(response.json()["job_id"]))
    assert row is not None
    assert row.origin is not None
    trace_id = format(request.context.trace_id, "032x")
    assert row.origin["traceparent"].split("-")[1] == trace_id


async def test_log_lines_and_outbound_requests_join_the_trace(
    settings: Settings,
    spans: InMemorySpanExporter,
    capture_logs: Any,
    resources: JobResources,
    site: LocalServer,
) -> None:
    logs: Captured = capture_logs(settings_for(settings.get_db_url(), log_format="json"))
    tracer = trace.get_tracer("test", tracer_provider=tracing._State.provider)
    with tracer.start_as_current_span("work") as work:
        logging.getLogger("{{ cookiecutter.project_slug }}.example").info("inside")
        url = site.url("/files/outbound/page.html")
        await fetch(resources.http, url, config=resources.outbound)
    (line,) = [line for line in logs.lines() if line["event"] == "inside"]
    assert line["trace_id"] == format(work.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(work.get_span_context().span_id, "016x")
    outbound = [
        span
        for span in spans.get_finished_spans()
        if span.kind is SpanKind.CLIENT
        and span.parent is not None
        and span.parent.span_id == work.get_span_context().span_id
        and "db.statement" not in (span.attributes or {})
    ]
    assert len(outbound) == 1
    (hit,) = site.hits("/files/outbound/page.html")
    assert format(work.get_span_context().trace_id, "032x") in hit.headers["traceparent"]
