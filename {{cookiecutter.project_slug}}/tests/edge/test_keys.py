"""API keys: every mutating request under /api/ and every job submission carries a valid one."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from httpx import ASGITransport, AsyncClient
from prometheus_client import REGISTRY
from pydantic import SecretStr, ValidationError
from starlette.datastructures import Headers

from {{ cookiecutter.project_slug }}.edge.keys import SAFE_METHODS, KeyRing
from {{ cookiecutter.project_slug }}.jobs.queue import EnqueueDep
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import TEST_API_KEY, api_client
{%- if cookiecutter.deploy_target == "render" %}
from tests.test_render import render_service
{%- endif %}

PROFILES = "/api/v1/profiles"
OLD_KEY = "old-key-rotating-out-0001"
NEW_KEY = "new-key-rotating-in-00002"


def profile(name: str) -> dict[str, str]:
    """A valid profile body with a unique email."""
    return {"name": name, "email": f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"}


@asynccontextmanager
async def keyless_client(app: FastAPI, settings: Settings) -> AsyncIterator[AsyncClient]:
    """A client on `app` (in-memory jobs, the test's transaction) that sends no key by itself."""
    async with api_client(app, settings) as client:
        del client.headers["X-API-Key"]
        yield client


@pytest.fixture
async def anonymous(
    app: FastAPI, settings: Settings, sessions: object
) -> AsyncIterator[AsyncClient]:
    """A client on the tests' app (keys required, `TEST_API_KEY` valid) that sends no key."""
    async with keyless_client(app, settings) as client:
        yield client


async def test_a_key_in_x_api_key_is_accepted(anonymous: AsyncClient) -> None:
    response = await anonymous.post(
        PROFILES, json=profile("Ada"), headers={"X-API-Key": TEST_API_KEY}
    )
    assert response.status_code == 201, response.text


async def test_a_bearer_token_is_accepted(anonymous: AsyncClient) -> None:
    for scheme in ("Bearer", "bearer"):
        response = await anonymous.post(
            PROFILES, json=profile("Bo"), headers={"Authorization": f"{scheme} {TEST_API_KEY}"}
        )
        assert response.status_code == 201, response.text


async def test_no_key_is_401_with_www_authenticate(anonymous: AsyncClient) -> None:
    response = await anonymous.post(PROFILES, json=profile("Cy"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json() == {"detail": "an API key is required"}


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": TEST_API_KEY + "x"},
        {"X-API-Key": TEST_API_KEY[:-1]},
        {"Authorization": "Bearer not-the-key-at-all-000"},
        {"Authorization": f"Basic {TEST_API_KEY}"},  # only the Bearer scheme carries a key
    ],
    ids=["longer", "shorter", "other-bearer", "basic-scheme"],
)
async def test_a_wrong_key_is_401(anonymous: AsyncClient, headers: dict[str, str]) -> None:
    response = await anonymous.post(PROFILES, json=profile("Di"), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_reading_needs_no_key(anonymous: AsyncClient) -> None:
    assert (await anonymous.get(PROFILES)).status_code == 200
    assert (await anonymous.get("/api/v1/jobs")).status_code == 200
    assert (await anonymous.get("/health")).status_code == 200


async def test_every_mutating_api_route_needs_a_key(app: FastAPI, anonymous: AsyncClient) -> None:
    """Routes added later (the jobs' cancel, a new feature) are covered without a line of theirs."""
    checked = []
    for route in iter_route_contexts(app.routes):
        template = route.path_format or ""
        if not isinstance(route.original_route, APIRoute) or not template.startswith("/api/"):
            continue
        ids = {name: uuid.uuid4() for name in route.original_route.param_convertors}
        for method in sorted((route.methods or set()) - SAFE_METHODS):
            response = await anonymous.request(method, template.format(**ids), json={})
            assert response.status_code == 401, (method, template, response.text)
            checked.append(f"{method} {template}")
    assert "POST /api/v1/profiles" in checked
    assert "POST /api/v1/jobs/{job_id}/cancel" in checked


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/api/v1/no-such-route", "/api/v2/anything", "/api/"])
async def test_any_mutating_method_on_an_unknown_api_path_needs_a_key(
    anonymous: AsyncClient, method: str, path: str
) -> None:
    """The key is checked before routing: a path no route declares is covered too."""
    refused = await anonymous.request(method, path, json={})
    assert refused.status_code == 401, refused.text
    assert refused.json() == {"detail": "an API key is required"}
    assert (await anonymous.get(path)).status_code == 404  # reading needs no key


async def test_a_root_path_is_read_as_routing_reads_it(settings: Settings) -> None:
    """Behind a proxy that mounts the service under a prefix (`--root-path`), the rule holds."""
    transport = ASGITransport(app=create_app(settings), root_path="/svc")
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        refused = await client.post("/svc/api/v1/profiles", json=profile("Jo"))
    assert refused.status_code == 401, refused.text


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_an_undeclared_method_stays_405_without_a_key(
    anonymous: AsyncClient, method: str
) -> None:
    """The OpenAPI contract (`tests/test_api_schema.py`): 405 with `Allow`, key or not."""
    for headers in ({}, {"X-API-Key": TEST_API_KEY}):
        response = await anonymous.request(method, PROFILES, json={}, headers=headers)
        assert response.status_code == 405, response.text
        assert response.headers["Allow"] == "GET, POST"


async def test_the_body_is_not_read_without_a_key(anonymous: AsyncClient) -> None:
    """An unauthorised client cannot make the service read, let alone parse, what it sends."""
    chunks_read: list[int] = []

    async def body(count: int) -> AsyncIterator[bytes]:
        for number in range(count):
            chunks_read.append(number)
            yield b'{"name": "Ada", ' if number == 0 else b" " * 65536

    refused = await anonymous.post(PROFILES, content=body(64))
    assert refused.status_code == 401
    assert chunks_read == []
    control = await anonymous.post(PROFILES, content=body(2), headers={"X-API-Key": TEST_API_KEY})
    assert control.status_code == 422  # read and parsed: the JSON is cut short
    assert chunks_read == [0, 1]


def app_with_submission(settings: Settings, method: str, path: str) -> FastAPI:
    """The app with one more route, outside `/api/`, that starts jobs (`EnqueueDep`)."""
    router = APIRouter()

    async def submit(enqueue: EnqueueDep) -> dict[str, str]:
        return {"status": "would submit"}

    router.add_api_route(path, submit, methods=[method])
    app = create_app(settings)
    app.include_router(router)
    return app


async def test_a_refusal_has_the_error_handlers_format_an_id_and_a_metric(
    settings: Settings, sessions: object
) -> None:
    """The middleware's 401 is the one the `DomainError` handler renders for a job submission
    (status, body, headers), and is observed like any response: request ID, route, metric."""
    app = app_with_submission(settings, "POST", "/submit")
    name = "http_server_request_duration_seconds_count"
    labels = {
        "http_request_method": "POST",
        "http_route": PROFILES,
        "http_response_status_code": "401",
    }
    before = REGISTRY.get_sample_value(name, labels) or 0.0
    async with keyless_client(app, settings) as client:
        by_handler = await client.post("/submit")
        by_middleware = await client.post(PROFILES, headers={"X-Request-ID": "refused-0001"})
    assert by_handler.status_code == by_middleware.status_code == 401
    assert by_handler.content == by_middleware.content
    exclude = {"x-request-id"}
    assert [h for h in by_handler.headers.multi_items() if h[0] not in exclude] == [
        h for h in by_middleware.headers.multi_items() if h[0] not in exclude
    ]
    assert by_middleware.headers["X-Request-ID"] == "refused-0001"
    assert REGISTRY.get_sample_value(name, labels) == before + 1


def test_every_key_is_compared_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Constant time: the first key matching does not end the comparisons early."""
    keys = ("first-key-of-three-00001", "second-key-of-three-0002", "third-key-of-three-00003")
    ring = KeyRing.from_settings(
        Settings(_env_file=None, api_keys=[SecretStr(key) for key in keys])
    )
    compared: list[bytes] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    for key in (*keys, "not-one-of-the-keys-0001"):
        compared.clear()
        found = ring.identify(Headers({"X-API-Key": key}))
        assert compared == list(ring.digests), key
        assert (found is not None) == (key in keys)


async def test_a_job_submission_needs_a_key_whatever_its_method(
    settings: Settings, sessions: object
) -> None:
    """`EnqueueDep` brings the key check: even a GET route that starts jobs is covered."""
    app = app_with_submission(settings, "GET", "/odd/submit")
    async with keyless_client(app, settings) as client:
        refused = await client.get("/odd/submit")
        allowed = await client.get("/odd/submit", headers={"X-API-Key": TEST_API_KEY})
    assert refused.status_code == 401
    assert allowed.status_code == 200


async def test_two_keys_are_valid_during_a_rotation(settings: Settings, sessions: object) -> None:
    rotating = settings.model_copy(update={"api_keys": (SecretStr(OLD_KEY), SecretStr(NEW_KEY))})
    app = create_app(rotating)
    async with keyless_client(app, rotating) as client:
        for key in (OLD_KEY, NEW_KEY):
            response = await client.post(PROFILES, json=profile("Ed"), headers={"X-API-Key": key})
            assert response.status_code == 201, response.text
        stale = await client.post(PROFILES, json=profile("Fa"), headers={"X-API-Key": TEST_API_KEY})
    assert stale.status_code == 401  # a key removed from API_KEYS stops working


async def test_development_without_keys_needs_none(settings: Settings, sessions: object) -> None:
    local = settings.model_copy(update={"environment": "development", "api_keys": ()})
    assert not local.api_keys_required
    app = create_app(local)
    async with keyless_client(app, local) as client:
        response = await client.post(PROFILES, json=profile("Gu"))
    assert response.status_code == 201, response.text


async def test_development_with_keys_requires_them(settings: Settings, sessions: object) -> None:
    local = settings.model_copy(update={"environment": "development"})
    assert local.api_keys_required
    async with keyless_client(create_app(local), local) as client:
        assert (await client.post(PROFILES, json=profile("Ha"))).status_code == 401


async def test_production_without_keys_refuses_every_change(
    settings: Settings, sessions: object, caplog: pytest.LogCaptureFixture
) -> None:
    """The documented choice: the service starts, logs why, and answers 503 to every change."""
    bare = settings.model_copy(update={"environment": "production", "api_keys": ()})
    app = create_app(bare)
    async with app.router.lifespan_context(app):
        pass
    assert "API_KEYS is empty" in caplog.text
    async with keyless_client(app, bare) as client:
        for headers in ({}, {"X-API-Key": TEST_API_KEY}):
            response = await client.post(PROFILES, json=profile("Io"), headers=headers)
            assert response.status_code == 503
            assert "set API_KEYS" in response.json()["detail"]
        assert (await client.get(PROFILES)).status_code == 200


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{OLD_KEY},{NEW_KEY}", (OLD_KEY, NEW_KEY)),
        (f" {OLD_KEY} , {NEW_KEY} ,", (OLD_KEY, NEW_KEY)),
        (f'["{OLD_KEY}", "{NEW_KEY}"]', (OLD_KEY, NEW_KEY)),
        ("", ()),
    ],
    ids=["commas", "spaces", "json", "empty"],
)
def test_api_keys_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: tuple[str, ...]
) -> None:
    monkeypatch.setenv("API_KEYS", value)
    keys = Settings(_env_file=None).api_keys
    assert tuple(key.get_secret_value() for key in keys) == expected
    assert OLD_KEY not in repr(Settings(_env_file=None))  # secrets stay out of logs


@pytest.mark.parametrize("key", ["short", "has a space in the key!", "tab\tseparated-key-0001"])
def test_weak_or_unsendable_keys_are_refused_at_start_up(key: str) -> None:
    with pytest.raises(ValidationError, match="at least 16 printable characters"):
        Settings(_env_file=None, api_keys=[key])
{%- if cookiecutter.deploy_target == "render" %}


def test_render_asks_for_the_keys_as_a_secret() -> None:
    env = {item["key"]: item for item in render_service()["envVars"]}
    assert env["ENVIRONMENT"]["value"] == "production"
    assert env["API_KEYS"] == {"key": "API_KEYS", "sync": False}
{%- endif %}
