"""The edge's answers in the OpenAPI schema: 400, 401, 413, 429 and 503 where they can occur.

FastAPI documents what routes declare; these statuses come from the edge instead (the body
limit, the key check, the rate limit, database trouble), so they are added to each operation
that can answer them, with the security schemes of the API keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel

from {{ cookiecutter.project_slug }}.db import get_session_dependency
from {{ cookiecutter.project_slug }}.edge.keys import (
    API_KEY_HEADER,
    KeyRing,
    key_required,
)
from {{ cookiecutter.project_slug }}.edge.ratelimit import guard_job_submission

SECURITY_SCHEMES = {
    "APIKeyHeader": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER},
    "HTTPBearer": {"type": "http", "scheme": "bearer"},
}
"""Either one authorises a request (OpenAPI: alternatives in one `security` list)."""
MESSAGE = "#/components/schemas/ErrorDetail"
RETRY_STATUSES = frozenset({"429", "503"})
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer"},
    }
}


class ErrorDetail(BaseModel):
    """The body of an error answered by the edge."""

    detail: str


def _response(code: str, description: str) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": {"$ref": MESSAGE}}}
    if code == "413":  # Starlette answers in plain text when Content-Length is already too big
        content["text/plain"] = {"schema": {"type": "string"}}
    response: dict[str, Any] = {"description": description, "content": content}
    if code in RETRY_STATUSES:
        response["headers"] = RETRY_AFTER
    return response


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    """Every dependency callable of a route, nested ones included."""
    for child in dependant.dependencies:
        if child.call is not None:
            yield child.call
        yield from _calls(child)


def document_edge(app: FastAPI, *, keys: KeyRing, rate_limited: bool, trusted_hosts: bool) -> None:
    """Make `app.openapi()` include the edge's statuses and the API keys' security schemes."""
    generate = app.openapi
    documented: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema = generate()  # cached by FastAPI, rebuilt when routes are added
        if not documented or documented[-1] is not schema:
            _add_edge(
                schema, app, keys=keys, rate_limited=rate_limited, trusted_hosts=trusted_hosts
            )
            documented[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point


def _add_edge(
    schema: dict[str, Any],
    app: FastAPI,
    *,
    keys: KeyRing,
    rate_limited: bool,
    trusted_hosts: bool,
) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["ErrorDetail"] = ErrorDetail.model_json_schema()
    secured = False
    for route in iter_route_contexts(app.routes):  # included routers' routes, with their prefixes
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        calls = set(_calls(route.dependant))
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            reasons = _reasons(
                route,
                method,
                calls,
                keys=keys,
                rate_limited=rate_limited,
                trusted_hosts=trusted_hosts,
            )
            responses = operation.setdefault("responses", {})
            for code, why in sorted(reasons.items()):
                responses.setdefault(code, _response(code, "; ".join(why)))
            if "401" in reasons:
                operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
                secured = True
    if secured:
        components["securitySchemes"] = SECURITY_SCHEMES


def _reasons(
    route: RouteContext,
    method: str,
    calls: set[Callable[..., Any]],
    *,
    keys: KeyRing,
    rate_limited: bool,
    trusted_hosts: bool,
) -> dict[str, list[str]]:
    """Status code -> why the edge may answer it, for one operation."""
    reasons: dict[str, list[str]] = {}
    if trusted_hosts:
        reasons.setdefault("400", []).append("The Host header is not one of TRUSTED_HOSTS")
    if route.body_field is not None:
        reasons.setdefault("400", []).append("The body could not be decoded (not UTF-8 JSON)")
        reasons["413"] = ["The body is larger than MAX_BODY_BYTES"]
    submits_jobs = guard_job_submission in calls
    keyed = submits_jobs or key_required(route.path_format or "", method)
    if keyed and keys.required:
        reasons["401"] = ["No API key, or not a valid one"]
        if not keys.digests:
            reasons.setdefault("503", []).append("The service has no API keys configured")
    if submits_jobs and rate_limited:
        reasons["429"] = ["Too many job submissions with this API key"]
    if get_session_dependency in calls or submits_jobs:
        reasons.setdefault("503", []).append("The database (or the task engine) cannot serve now")
    return reasons
