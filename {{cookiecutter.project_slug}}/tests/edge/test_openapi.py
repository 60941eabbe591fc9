"""The OpenAPI schema documents what the edge answers: 400, 401, 413, 422, 429 and 503."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import SecretStr

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings

SECURITY: list[dict[str, list[str]]] = [{"APIKeyHeader": []}, {"HTTPBearer": []}]


def operation(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """One operation of the schema."""
    found: dict[str, Any] = schema["paths"][path][method]
    return found


def test_writes_document_the_key_the_body_limit_and_the_database(app: FastAPI) -> None:
    schema = app.openapi()
    create = operation(schema, "post", "/api/v1/profiles")
    assert {"400", "401", "413", "422", "503"} <= create["responses"].keys()
    assert create["security"] == SECURITY
    assert schema["components"]["securitySchemes"] == {
        "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "HTTPBearer": {"type": "http", "scheme": "bearer"},
    }
    cancel = operation(schema, "post", "/api/v1/jobs/{job_id}/cancel")  # a later route, covered
    assert {"401", "503"} <= cancel["responses"].keys()
    assert cancel["security"] == SECURITY
    retry = create["responses"]["503"]["headers"]["Retry-After"]
    assert retry["schema"] == {"type": "integer"}
    too_large = create["responses"]["413"]["content"]
    assert set(too_large) == {"application/json", "text/plain"}


def test_reads_need_no_key_and_document_database_trouble(app: FastAPI) -> None:
    schema = app.openapi()
    listing = operation(schema, "get", "/api/v1/profiles")
    assert "security" not in listing
    assert "401" not in listing["responses"]
    assert "503" in listing["responses"]
    health = operation(schema, "get", "/health")
    assert set(health["responses"]) == {"200"}
    ready = operation(schema, "get", "/health/db")
    assert ready["responses"]["503"]["description"] == "The database did not answer"  # its own


def test_job_submissions_document_the_rate_limit(settings: Settings) -> None:
    schema = create_app(settings.model_copy(update={"job_rate_limit": "30/minute"})).openapi()
    imports = operation(schema, "post", "/api/v1/profiles/imports")
    assert "Retry-After" in imports["responses"]["429"]["headers"]
    assert "429" not in operation(schema, "post", "/api/v1/profiles")["responses"]
    unlimited = create_app(settings).openapi()
    assert "429" not in operation(unlimited, "post", "/api/v1/profiles/imports")["responses"]


def test_without_keys_in_development_no_security_is_claimed(settings: Settings) -> None:
    local = settings.model_copy(update={"environment": "development", "api_keys": ()})
    schema = create_app(local).openapi()
    create = operation(schema, "post", "/api/v1/profiles")
    assert "security" not in create
    assert "401" not in create["responses"]
    assert "securitySchemes" not in schema["components"]


def test_trusted_hosts_add_their_400(settings: Settings) -> None:
    hosts = settings.model_copy(update={"trusted_hosts": ("api.example.com",)})
    schema = create_app(hosts).openapi()
    assert "Host header" in operation(schema, "get", "/health")["responses"]["400"]["description"]


def test_a_route_added_later_is_documented_too(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"api_keys": (SecretStr("k" * 16),)}))
    app.openapi()  # generated once before the route exists
    router = APIRouter(prefix="/api/v1/extra")

    @router.put("")
    async def put_extra(body: dict[str, int]) -> dict[str, int]:
        return body

    app.include_router(router)
    extra = operation(app.openapi(), "put", "/api/v1/extra")
    assert {"400", "413"} <= extra["responses"].keys()
