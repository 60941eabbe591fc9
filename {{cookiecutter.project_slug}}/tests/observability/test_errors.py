"""Sentry: errors reported through a local transport, without bodies, cookies or secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import sentry_sdk
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from {{ cookiecutter.project_slug }}.jobs.runner import JobResources
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.observability.errors import start_sentry
from {{ cookiecutter.project_slug }}.outbound.client import fetch
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import TEST_API_KEY, settings_for
from tests.localserver import LocalServer

DSN_KEY = "5e17a4d1c0ffee5e17a4d1c0ffee0001"
DB_PASSWORD = "db-pass-9b8a7c6d5e"
BODY_SECRET = "body-text-never-sent-3f2e"


class LocalTransport(Transport):
    """Keeps every envelope in memory instead of sending it."""

    envelopes: ClassVar[list[Envelope]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        """Keep the envelope."""
        self.envelopes.append(envelope)


@pytest.fixture
def reported(settings: Settings) -> Iterator[tuple[Settings, list[dict[str, Any]]]]:
    """Sentry on, with the local transport; yields the settings and the events sent."""
    url = settings.get_db_url().set(password=DB_PASSWORD)
    with_dsn = settings_for(url, sentry_dsn=SecretStr(f"https://{DSN_KEY}@o1.ingest.sentry.io/9"))
    LocalTransport.envelopes.clear()
    assert start_sentry(with_dsn, transport=LocalTransport)
    assert not sentry_sdk.get_client().options["send_default_pii"]  # no personal data
    events: list[dict[str, Any]] = []
    yield with_dsn, events
    sentry_sdk.get_client().close()
    sentry_sdk.get_global_scope().set_client(None)


def sent_events() -> list[dict[str, Any]]:
    """The events in the envelopes sent so far."""
    sentry_sdk.flush()
    return [
        json.loads(item.get_bytes())
        for envelope in LocalTransport.envelopes
        for item in envelope.items
        if item.type == "event"
    ]


def test_no_dsn_no_sentry(settings: Settings) -> None:
    assert settings.sentry_dsn is None
    assert not start_sentry(settings, transport=LocalTransport)


async def test_an_error_is_reported_without_secrets_or_body(
    reported: tuple[Settings, list[dict[str, Any]]],
) -> None:
    settings, _ = reported
    app = create_app(settings)
    url = settings.get_db_url().render_as_string(hide_password=False)

    async def broken() -> None:
        connection_url = url  # a local variable Sentry would show with the stack frame
        raise RuntimeError(f"cannot reach {connection_url} with {TEST_API_KEY}")

    app.add_api_route("/_broken", broken, methods=["POST"])
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(
            "/_broken",
            json={"note": BODY_SECRET},
            headers={
                "Authorization": f"Bearer {TEST_API_KEY}",
                "X-API-Key": TEST_API_KEY,
                "Cookie": "session=cookie-value-1234",
                "X-Request-ID": "sentry-1",
            },
        )
    assert response.status_code == 500
    events = sent_events()
    assert events, "no event was sent"
    text = json.dumps(events)
    assert "RuntimeError" in text  # the error is reported...
    for secret in (DB_PASSWORD, DSN_KEY, TEST_API_KEY, BODY_SECRET, "cookie-value-1234"):
        assert secret not in text  # ...without secrets, body or cookie
    for event in events:
        request = event.get("request", {})
        assert "data" not in request
        assert "cookies" not in request
        headers = {name.lower(): value for name, value in request.get("headers", {}).items()}
        assert headers.get("authorization", "***") == "***"
        assert headers.get("x-api-key", "***") == "***"
        assert headers.get("cookie", "***") == "***"
        assert "user" not in event or "ip_address" not in event["user"]
        assert event["environment"] == settings.environment
        frames = [
            frame
            for exception in event.get("exception", {}).get("values", [])
            for frame in exception.get("stacktrace", {}).get("frames", [])
        ]
        assert not any("vars" in frame for frame in frames)  # no local variables


def test_a_logged_error_is_reported_and_scrubbed_too(
    reported: tuple[Settings, list[dict[str, Any]]],
) -> None:
    settings, _ = reported
    url = settings.get_db_url().render_as_string(hide_password=False)
    logger = logging.getLogger("{{ cookiecutter.project_slug }}.example")
    logger.error("could not connect to %s", url)
    text = json.dumps(sent_events())
    assert "could not connect to" in text
    assert DB_PASSWORD not in text


async def test_fetched_sites_get_no_sentry_headers(
    reported: tuple[Settings, list[dict[str, Any]]], resources: JobResources, site: LocalServer
) -> None:
    url = site.url("/files/outbound/page.html")
    assert (await fetch(resources.http, url, config=resources.outbound)).status_code == 200
    (hit,) = site.hits("/files/outbound/page.html")
    sent = {name.lower() for name in hit.headers}
    assert "user-agent" in sent
    assert not sent & {"sentry-trace", "baggage", "traceparent"}
