"""Error reports to Sentry, only when `SENTRY_DSN` is set, and never with secrets or bodies.

Personal data stays off: `send_default_pii` is left at its default (False; newer SDKs deprecate
setting it), which also keeps Sentry's own `EventScrubber` on, so users' IP addresses, cookies
and user data are not sent. Request bodies are not read (`max_request_body_size="never"`), and
stack frames carry no local variables (they hold request bodies, rows and URLs). `before_send`
removes what is left of request bodies, cookies and credential headers, and masks every known
secret value anywhere in the event (messages, exception values, breadcrumbs). Outbound requests
to the sites the service fetches carry no Sentry tracing headers (`trace_propagation_targets=[]`).
"""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.transport import Transport
from sentry_sdk.types import Event, Hint

from {{ cookiecutter.project_slug }}.observability.redact import MASK, Redactor
from {{ cookiecutter.project_slug }}.settings import Settings

DROPPED_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "cookie"})


def scrubber(redactor: Redactor) -> Any:
    """A `before_send` that strips bodies, cookies and credential headers, and masks secrets."""

    def before_send(event: Event, _: Hint) -> Event:
        request = event.get("request")
        if isinstance(request, dict):
            request.pop("data", None)
            request.pop("cookies", None)
            headers = request.get("headers")
            if isinstance(headers, dict):
                request["headers"] = {
                    name: MASK if name.lower() in DROPPED_HEADERS else value
                    for name, value in headers.items()
                }
        scrubbed: Event = redactor.value(event)
        return scrubbed

    return before_send


def start_sentry(settings: Settings, *, transport: type[Transport] | None = None) -> bool:
    """Start the Sentry client when `SENTRY_DSN` is set; return whether it runs.

    A client already running for the same DSN is kept (the app and a worker in one process).
    `transport` replaces the network transport (tests capture the envelopes locally).
    """
    if settings.sentry_dsn is None:
        return False
    dsn = settings.sentry_dsn.get_secret_value()
    client = sentry_sdk.get_client()
    if client.is_active() and client.options.get("dsn") == dsn:
        return True
    options: dict[str, Any] = {}
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(
        dsn=dsn,
        environment=settings.environment,
        max_request_body_size="never",
        include_local_variables=False,  # locals hold request bodies, rows and connection URLs
        before_send=scrubber(Redactor.from_settings(settings)),
        trace_propagation_targets=[],
        **options,
    )
    return True
