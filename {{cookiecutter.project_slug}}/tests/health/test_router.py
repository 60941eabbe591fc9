"""Liveness without the database, readiness through the session dependency."""

from __future__ import annotations

from httpx import ASGITransport, AsyncClient

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings


async def test_health(client: AsyncClient) -> None:
    response = await client.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_health_db(client: AsyncClient) -> None:
    response = await client.get("/health/db")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_health_db_is_503_when_the_database_is_down() -> None:
    settings = Settings(  # a port nothing listens on
        _env_file=None,
        database_url="postgresql://postgres@127.0.0.1:9/postgres",
        db_connect_timeout=2,
    )
    app = create_app(settings)
    transport = ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        live = await client.get("/health")
        ready = await client.get("/health/db")
    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
