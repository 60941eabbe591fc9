"""The app's edge settings: body limit, production mode, CORS and trusted hosts; its routes.

The 12 MB body goes to the real `start` process: what happens to the rest of a refused body,
and whether other requests are served meanwhile, is the server's business.
"""

from __future__ import annotations

import gc
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Response
from fastapi.routing import APIRoute
from httpx import ASGITransport, AsyncClient
from pydantic import BaseModel
from starlette.routing import Route

from {{ cookiecutter.project_slug }}.main import add_routes, create_app
from {{ cookiecutter.project_slug }}.observability.process import GC_YOUNG_THRESHOLD
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import api_client
from tests.serving import running_service

PROFILES = "/api/v1/profiles"
TWELVE_MB = 12 * 1024 * 1024


def client_on(settings: Settings, base_url: str = "http://test") -> AsyncClient:
    """A client on an app built from `settings` (no lifespan: for what needs no database)."""
    return AsyncClient(transport=ASGITransport(app=create_app(settings)), base_url=base_url)


def padded(size: int) -> bytes:
    """A valid profile body of exactly `size` bytes (JSON whitespace fills the rest)."""
    body = json.dumps({"name": "Ada", "email": "ada@example.com"}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


# The body limit (MAX_BODY_BYTES).


@pytest.fixture
async def small_limit(settings: Settings, sessions: object) -> AsyncIterator[AsyncClient]:
    """A client on an app that takes bodies of at most 1000 bytes."""
    limited = settings.model_copy(update={"max_body_bytes": 1000})
    async with api_client(create_app(limited), limited) as client:
        yield client


async def test_a_body_at_the_limit_is_read(small_limit: AsyncClient) -> None:
    response = await small_limit.post(
        PROFILES, content=padded(1000), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text


async def test_a_body_over_the_limit_is_413(small_limit: AsyncClient) -> None:
    response = await small_limit.post(
        PROFILES, content=padded(1001), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    # Content-Length announced too much: Starlette answers before the app, in plain text.
    assert response.text == "Content Too Large"


async def test_a_chunked_body_over_the_limit_is_413(small_limit: AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the bytes are counted
        for _ in range(100):
            yield b" " * 100

    response = await small_limit.post(
        PROFILES, content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {"detail": "Content Too Large"}


def rss_kib(pid: int) -> int:
    """Resident memory of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_12_mb_body_is_413_while_health_answers(settings: Settings, tmp_path: Path) -> None:
    """The report's case against `start`: 12 MB of invalid URLs, sized and chunked."""
    urls = b", ".join([b'"not a url"'] * (TWELVE_MB // 13))
    body = b'{"profiles": [' + urls + b"]}"
    assert len(body) > TWELVE_MB * 0.95
    json_type = {"Content-Type": "application/json"}
    with running_service(tmp_path, settings.get_db_url()) as service:
        url = f"{service.base_url}{PROFILES}/imports"
        warm = httpx.post(url, json={"profiles": "none"}, timeout=30)
        assert warm.status_code == 422
        before = rss_kib(service.process.pid)

        sized = httpx.post(url, content=body, headers=json_type, timeout=60)

        health: list[int] = []

        def chunked() -> Iterator[bytes]:
            step = 64 * 1024
            for start in range(0, len(body), step):
                if start == 4 * 1024 * 1024:  # well past the limit, mid-upload
                    health.append(httpx.get(f"{service.base_url}/health", timeout=10).status_code)
                yield body[start : start + step]

        streamed = httpx.post(url, content=chunked(), headers=json_type, timeout=60)
        grown_mib = (rss_kib(service.process.pid) - before) / 1024
        still = httpx.get(f"{service.base_url}/health", timeout=10)
    assert sized.status_code == 413, service.output()[-2000:]
    assert streamed.status_code == 413
    assert streamed.json() == {"detail": "Content Too Large"}
    assert health == [200], "/health answered while the big body was still arriving"
    assert still.status_code == 200
    assert grown_mib < 32, f"the server grew by {grown_mib:.0f} MiB for two refused 12 MB bodies"


# Production mode: no interactive docs, no schema, unless API_DOCS=true.


@pytest.mark.parametrize(
    ("environment", "api_docs", "served"),
    [
        ("production", None, False),
        ("production", True, True),
        ("development", None, True),
        ("test", None, True),
        ("development", False, False),
    ],
)
async def test_the_docs_follow_the_environment(
    settings: Settings, environment: str, api_docs: bool | None, served: bool
) -> None:
    config = settings.model_copy(update={"environment": environment, "api_docs": api_docs})
    async with client_on(config) as client:
        statuses = {path: (await client.get(path)).status_code for path in DOCS}
    assert statuses == dict.fromkeys(DOCS, 200 if served else 404)


DOCS = ("/docs", "/redoc", "/openapi.json")


# CORS and trusted hosts: off unless configured.


async def test_cors_is_off_by_default(settings: Settings) -> None:
    async with client_on(settings) as client:
        response = await client.get("/health", headers={"Origin": "https://app.example.com"})
    assert "access-control-allow-origin" not in response.headers


async def test_cors_origins_may_call_the_api_with_a_key(settings: Settings) -> None:
    config = settings.model_copy(update={"cors_origins": ("https://app.example.com",)})
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-api-key",
    }
    async with client_on(config) as client:
        allowed = await client.options(
            PROFILES, headers={"Origin": "https://app.example.com", **preflight}
        )
        other = await client.options(
            PROFILES, headers={"Origin": "https://evil.example.com", **preflight}
        )
        simple = await client.get("/health", headers={"Origin": "https://app.example.com"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    assert other.status_code == 400
    assert simple.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "Retry-After" in simple.headers["access-control-expose-headers"]


async def test_trusted_hosts_refuse_other_hosts(settings: Settings) -> None:
    config = settings.model_copy(update={"trusted_hosts": ("api.example.com", "*.internal")})
    async with client_on(config, "http://api.example.com") as client:
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/health", headers={"Host": "db.internal"})).status_code == 200
        refused = await client.get("/health", headers={"Host": "evil.example.com"})
    assert refused.status_code == 400


async def test_any_host_by_default(settings: Settings) -> None:
    async with client_on(settings, "http://whatever.example") as client:
        assert (await client.get("/health")).status_code == 200


def test_lists_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example.com, https://b.example.com")
    monkeypatch.setenv("TRUSTED_HOSTS", '["api.example.com"]')
    configured = Settings(_env_file=None)
    assert configured.cors_origins == ("https://a.example.com", "https://b.example.com")
    assert configured.trusted_hosts == ("api.example.com",)
    assert Settings(_env_file=None, environment="production").api_docs_served is False


@pytest.mark.parametrize("young", [700, 50_000])
def test_the_app_raises_the_collectors_young_threshold_never_lowers_it(
    settings: Settings, young: int
) -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(young, 7, 9)
        create_app(settings)
        assert gc.get_threshold() == (max(young, GC_YOUNG_THRESHOLD), 7, 9)
    finally:
        gc.set_threshold(*before)


# Routes: the API's first, each matched on its own.


def test_the_api_routes_come_first_each_on_its_own(settings: Settings) -> None:
    routes = create_app(settings).router.routes
    assert all(isinstance(route, APIRoute | Route) for route in routes), routes  # none kept whole
    paths = [route.path for route in routes if isinstance(route, APIRoute | Route)]
    under_api = [path.startswith("/api/") for path in paths]
    assert under_api == sorted(under_api, reverse=True), paths
    assert paths.index("/health") < paths.index("/metrics") < paths.index("/openapi.json")


class Thing(BaseModel):
    """A response model."""

    count: int


def example_router() -> APIRouter:
    """A router with options at every level (prefix, tags, dependencies, responses)."""

    async def tagged(response: Response) -> None:
        response.headers["X-Router-Dependency"] = "ran"

    router = APIRouter(
        prefix="/things",
        tags=["things"],
        dependencies=[Depends(tagged)],
        responses={418: {"description": "A teapot"}},
    )

    @router.post("", status_code=201, summary="Make a thing", response_model=Thing)
    async def make_thing(count: int = 1) -> dict[str, int | str]:
        """Make a thing (the response model drops the name)."""
        return {"count": count, "name": "dropped"}

    @router.get("/{thing_id:int}", deprecated=True, include_in_schema=False)
    async def read_thing(thing_id: int) -> dict[str, int]:
        """Read a thing."""
        return {"id": thing_id}

    return router


async def test_a_router_added_route_by_route_is_the_router_included() -> None:
    copied, included = FastAPI(), FastAPI()
    add_routes(copied, example_router(), prefix="/v1")
    included.include_router(example_router(), prefix="/v1")
    assert all(isinstance(route, APIRoute) for route in copied.router.routes[-2:])
    assert copied.openapi() == included.openapi()
    for app in (copied, included):
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
            made = await client.post("/v1/things", params={"count": 3})
            read = await client.get("/v1/things/7")
            missing = await client.get("/v1/things/x")
        assert (made.status_code, made.json()) == (201, {"count": 3})
        assert made.headers["X-Router-Dependency"] == read.headers["X-Router-Dependency"] == "ran"
        assert (read.status_code, read.json(), missing.status_code) == (200, {"id": 7}, 404)


@asynccontextmanager
async def router_lifespan(_: object) -> AsyncIterator[None]:
    """A lifespan of a router's own."""
    yield


@pytest.mark.parametrize("extra", ["nested router", "lifespan"])
async def test_a_router_with_more_than_routes_is_included_whole(extra: str) -> None:
    router = example_router() if extra == "nested router" else APIRouter(lifespan=router_lifespan)
    if extra == "nested router":
        router.include_router(APIRouter(prefix="/inner"))
    app = FastAPI()
    add_routes(app, router, prefix="/v1")
    assert not isinstance(app.router.routes[-1], APIRoute | Route)  # FastAPI's included router
