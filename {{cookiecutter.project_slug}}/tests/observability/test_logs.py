"""Logs: JSON in production, request and job IDs on every line, secrets never written."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest
import structlog
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr

from {{ cookiecutter.project_slug }}.db import SessionFactory
from {{ cookiecutter.project_slug }}.jobs.models import Job
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.observability.context import MAX_REQUEST_ID_LENGTH
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import TEST_API_KEY, api_client, settings_for
from tests.observability.conftest import Captured

DB_PASSWORD = "db-pass-4f1d2e9a7c"
SENTRY_KEY = "0123456789abcdef0123456789abcdef"
METRICS_TOKEN = "metrics-token-8e7d6c5b4a"
PLACES_KEY = "places-key-1a2b3c4d5e"
EXAMPLE_LOGGER = "{{ cookiecutter.project_slug }}.example"


def production(settings: Settings, **overrides: Any) -> Settings:
    """The test settings, as in production."""
    return settings_for(settings.get_db_url(), environment="production", **overrides)


def add_logging_route(app: FastAPI) -> None:
    """`GET /_log` logs one line through `logging.getLogger` and one through structlog."""

    async def handler() -> dict[str, str]:
        logging.getLogger(EXAMPLE_LOGGER).warning("from %s", "stdlib")
        structlog.get_logger(EXAMPLE_LOGGER).info("from structlog", n=1)
        return {}

    app.add_api_route("/_log", handler)


async def test_production_lines_are_json_with_the_clients_request_id(
    settings: Settings, sessions: SessionFactory, capture_logs: Any
) -> None:
    prod = production(settings)
    app = create_app(prod)
    add_logging_route(app)
    logs: Captured = capture_logs(prod)
    async with api_client(app, prod) as client:
        response = await client.get("/_log", headers={"X-Request-ID": "req-42.a:b"})
    assert response.headers["X-Request-ID"] == "req-42.a:b"
    lines = [line for line in logs.lines() if line.get("logger", "").endswith(".example")]
    assert [line["event"] for line in lines] == ["from stdlib", "from structlog"]
    assert all(line["request_id"] == "req-42.a:b" for line in lines)
    assert lines[0]["level"] == "warning"
    assert lines[1]["n"] == 1
    assert lines[0]["timestamp"].endswith("Z")


@pytest.mark.parametrize(
    "given",
    [
        "two words",
        'quote"d',
        "new\nline",
        "x" * (MAX_REQUEST_ID_LENGTH + 1),
        "",
    ],
)
async def test_an_unsafe_request_id_is_replaced(client: Any, given: str) -> None:
    response = await client.get("/health", headers={"X-Request-ID": given})
    request_id = response.headers["X-Request-ID"]
    assert request_id != given
    assert len(request_id) == 32
    int(request_id, 16)


async def test_the_longest_request_id_is_kept(client: Any) -> None:
    given = "a" * MAX_REQUEST_ID_LENGTH
    response = await client.get("/health", headers={"X-Request-ID": given})
    assert response.headers["X-Request-ID"] == given


async def test_each_request_gets_its_own_id(client: Any) -> None:
    first = await client.get("/health")
    second = await client.get("/health")
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


async def test_a_500_carries_the_request_id(settings: Settings) -> None:
    app = create_app(settings)

    async def broken() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/_broken", broken)
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/_broken", headers={"X-Request-ID": "failing-1"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "failing-1"


async def test_job_lines_carry_the_job_and_the_submitting_request(
    settings: Settings, sessions: SessionFactory, capture_logs: Any
) -> None:
    prod = production(settings)
    app = create_app(prod)
    logs: Captured = capture_logs(prod)
    body = {"profiles": [{"name": "Ada", "email": "ada@example.com"}]}
    async with api_client(app, prod) as client:
        response = await client.post(
            "/api/v1/profiles/imports", json=body, headers={"X-Request-ID": "submit-7"}
        )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    job_lines = [line for line in logs.lines() if "job_id" in line]
    assert job_lines, logs.getvalue()
    assert any(line["event"].endswith("succeeded") for line in job_lines)
    for line in job_lines:
        assert line["job_id"] == job_id
        assert line["job_kind"] == "profiles.import"
        assert line["request_id"] == "submit-7"
    async with sessions() as session:
        job = await session.get(Job, uuid.UUID(job_id))
    assert job is not None
    assert job.origin == {"request_id": "submit-7"}


def secret_settings(settings: Settings, environment: str) -> Settings:
    """Settings holding one secret of every kind."""
    url = settings.get_db_url().set(password=DB_PASSWORD)
    return settings_for(
        url,
        environment=environment,
        sentry_dsn=SecretStr(f"https://{SENTRY_KEY}@o1.ingest.sentry.io/2"),
        metrics_token=SecretStr(METRICS_TOKEN),
{%- if cookiecutter.include_places %}
        google_places_api_key=SecretStr(PLACES_KEY),
{%- endif %}
    )


@pytest.mark.parametrize("environment", ["production", "development"])
def test_secrets_never_reach_the_log(
    settings: Settings, capture_logs: Any, environment: str
) -> None:
    secret = secret_settings(settings, environment)
    logs: Captured = capture_logs(secret)
    logger = logging.getLogger("{{ cookiecutter.project_slug }}.leaky")
    url = secret.get_db_url().render_as_string(hide_password=False)
    dsn = secret.sentry_dsn.get_secret_value() if secret.sentry_dsn else ""
    logger.info("settings: %s", secret.model_dump())
    logger.info("connecting to %s", url)
    logger.info("also %s", "redis://:other-pass-123@cache:6379/0")  # a URL not in the settings
    logger.warning(
        "request headers: %s",
        {"Authorization": f"Bearer {TEST_API_KEY}", "X-API-Key": TEST_API_KEY, "Cookie": "s=1"},
    )
    logger.info("raw header line Authorization: Bearer %s", "unknown-bearer-token-77")
    try:
        raise RuntimeError(f"cannot connect to {url} with key {TEST_API_KEY} ({dsn})")
    except RuntimeError:
        logger.exception("failed")
    structlog.get_logger("{{ cookiecutter.project_slug }}.leaky").info(
        "structured", dsn=dsn, token=METRICS_TOKEN, places=PLACES_KEY, url=url
    )
    output = logs.getvalue()
    assert "cannot connect to" in output  # the lines were written...
    assert "Traceback" in output
    for value in (
        DB_PASSWORD,
        SENTRY_KEY,
        METRICS_TOKEN,
        TEST_API_KEY,
        "other-pass-123",
        "unknown-bearer-token-77",
{%- if cookiecutter.include_places %}
        PLACES_KEY,
{%- endif %}
    ):
        assert value not in output  # ...without any secret
    assert "***" in output
    if environment == "production":
        assert all(isinstance(json.loads(line), dict) for line in output.splitlines())
    else:
        with pytest.raises(json.JSONDecodeError):
            json.loads(output.splitlines()[0])


def test_server_loggers_are_rendered_once_by_the_same_handler(
    settings: Settings, capture_logs: Any
) -> None:
    access = logging.getLogger("uvicorn.access")
    access.addHandler(logging.StreamHandler())  # as uvicorn's own logging config does
    access.propagate = False
    logs: Captured = capture_logs(production(settings))
    access.info('%s - "%s %s HTTP/1.1" %d', "127.0.0.1:5000", "GET", "/health", 200)
    lines = [line for line in logs.lines() if line["logger"] == "uvicorn.access"]
    assert len(lines) == 1
    assert lines[0]["event"] == '127.0.0.1:5000 - "GET /health HTTP/1.1" 200'
    assert access.handlers == []
