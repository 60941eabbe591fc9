"""What the API answers when things go wrong: 422s that never echo big inputs, database trouble
as 503 with Retry-After (pool exhausted, connection refused, statement timeout), and 500s that
close their connection with `Connection: close`, under a real uvicorn.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import BaseModel, HttpUrl, SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from {{ cookiecutter.project_slug }}.db import SessionDep
from {{ cookiecutter.project_slug }}.errors import (
    MAX_INPUT_CHARS,
    MAX_LISTED_ERRORS,
    RETRY_AFTER_SECONDS,
    preview,
)
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import API_KEY_HEADERS
from tests.serving import free_port

PROFILES = "/api/v1/profiles"


class Probe(BaseModel):
    """A body with the shapes the tests send wrong."""

    name: str
    count: int
    urls: list[HttpUrl] = []


def probe_app(settings: Settings) -> FastAPI:
    """The app, plus `/probe` (validation) and `/boom` (an unhandled error)."""
    router = APIRouter()

    @router.post("/probe")
    async def probe(body: Probe) -> dict[str, int]:
        return {"urls": len(body.urls)}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    app = create_app(settings)
    app.include_router(router)
    return app


@pytest.fixture
async def probe_client(settings: Settings) -> AsyncIterator[AsyncClient]:
    """A client on `probe_app`; validation needs no database."""
    transport = ASGITransport(app=probe_app(settings))
    async with AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@asynccontextmanager
async def live(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A client on `app` with its real lifespan: its own engine and pool."""
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(
            transport=transport, base_url="http://test", headers=API_KEY_HEADERS, timeout=30
        ) as client,
    ):
        yield client


@asynccontextmanager
async def uvicorn_serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` with a real uvicorn (the `start` command's server) on a free port."""
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="critical")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                await task  # start-up failed: raise its error
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        await task


# Validation errors: bounded, whatever the input.


async def test_a_huge_input_is_echoed_as_a_short_prefix(probe_client: AsyncClient) -> None:
    name = "x" * 400_000  # twice, under MAX_BODY_BYTES; the report's 50 MB now gets a 413 first
    response = await probe_client.post("/probe", json={"name": name, "count": name})
    assert response.status_code == 422
    assert len(response.content) < 2_000
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "count"]
    assert error["input"] == "x" * MAX_INPUT_CHARS + "…"


async def test_a_missing_field_does_not_echo_the_whole_body(probe_client: AsyncClient) -> None:
    response = await probe_client.post("/probe", json={"name": "y" * 500_000})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["type"] == "missing"
    assert error["input"].startswith('{"name": "yyyy')
    assert len(error["input"]) <= MAX_INPUT_CHARS + 1


async def test_many_errors_are_listed_up_to_a_cap(probe_client: AsyncClient) -> None:
    """The report's case, within the body limit: a body of invalid URLs."""
    urls = ["not a url"] * 80_000  # about 1 MB, as many errors
    response = await probe_client.post("/probe", json={"name": "n", "count": 1, "urls": urls})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert len(detail) == MAX_LISTED_ERRORS + 1
    assert detail[-1] == {
        "loc": [],
        "msg": f"{len(urls) - MAX_LISTED_ERRORS} more errors not listed",
        "type": "too_many_errors",
    }
    assert len(response.content) < 10_000


async def test_small_inputs_are_echoed_as_they_were(probe_client: AsyncClient) -> None:
    response = await probe_client.post("/probe", json={"name": "n", "count": [1, {"a": None}]})
    (error,) = response.json()["detail"]
    assert error["input"] == [1, {"a": None}]


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ('{"name": "n", "count": "\\ud800"}', "\\ud800"),  # a lone surrogate: UTF-8 cannot hold it
        ('{"name": "n", "count": NaN}', "nan"),  # Python's JSON reader takes NaN; JSON has none
        ('{"name": "n", "count": "a\\u0000b"}', "a\x00b"),
    ],
    ids=["lone-surrogate", "nan", "nul"],
)
async def test_inputs_json_cannot_carry_are_shown_escaped(
    probe_client: AsyncClient, raw: str, shown: str
) -> None:
    response = await probe_client.post(
        "/probe", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["input"] == shown


async def test_malformed_json_is_422(probe_client: AsyncClient) -> None:
    response = await probe_client.post(
        "/probe", content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


async def test_an_undecodable_body_is_the_documented_400(probe_client: AsyncClient) -> None:
    response = await probe_client.post(
        "/probe", content=b"\xff\xfe{", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    schema = (await probe_client.get("/openapi.json")).json()
    assert "400" in schema["paths"]["/probe"]["post"]["responses"]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("short", "short"),
        ("é" * 100, "é" * 10 + "…"),
        (b"\xffbytes", "\ufffdbytes"),
        (2**80, "1208925819…"),
        ({"k": "v" * 50}, '{"k": "vvv…'),
        ({"k": [1]}, {"k": [1]}),
        (list(range(10**6)), "[0, 1, 2, …"),
        (float("inf"), "inf"),
    ],
)
def test_preview_keeps_any_input_short(value: Any, shown: Any) -> None:
    assert preview(value, 10) == shown
    json.dumps(preview(value, 10), allow_nan=False).encode()  # JSON and UTF-8 can carry it


# Database trouble: 503 with Retry-After, never 500.


def assert_unavailable(response: httpx.Response, reason: str) -> None:
    """A 503 with `Retry-After` and the short reason."""
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert response.json() == {"detail": reason}


@asynccontextmanager
async def locked_profiles(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """Hold an exclusive lock on `profiles` until the block ends: readers wait for it."""
    async with engine.connect() as connection:
        await connection.execute(text("LOCK TABLE profiles IN ACCESS EXCLUSIVE MODE"))
        yield connection
        await connection.rollback()


async def wait_for_lock_waiters(observer: AsyncConnection, count: int) -> None:
    """Return once `count` sessions wait for a lock (the requests that hold a connection)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with asyncio.timeout(30):
        while True:
            waiting = await observer.scalar(query)
            await observer.rollback()  # a transaction keeps one snapshot of pg_stat_activity
            if waiting is not None and waiting >= count:
                return
            await asyncio.sleep(0.05)


async def test_an_exhausted_pool_is_503_and_recovers(
    settings: Settings, engine: AsyncEngine
) -> None:
    tiny = settings.model_copy(
        update={
            "db_pool_size": 1,
            "db_max_overflow": 0,
            "db_pool_timeout": 0.5,
            "db_statement_timeout": 0.0,  # the request holding the connection waits for the lock
        }
    )
    async with live(create_app(tiny)) as client:
        async with locked_profiles(engine), engine.connect() as observer:
            holder = asyncio.create_task(client.get(PROFILES))  # takes the only connection
            await wait_for_lock_waiters(observer, 1)
            busy = "all database connections are busy; try again later"
            assert_unavailable(await client.get(PROFILES), busy)
            assert_unavailable(
                await client.post(PROFILES, json={"name": "A", "email": "a@x.io"}), busy
            )
        assert (await holder).status_code == 200  # the lock is gone: the held request finishes
        assert (await client.get(PROFILES)).status_code == 200  # and the pool serves again


async def test_a_refusing_database_is_503_for_reads_and_writes(settings: Settings) -> None:
    closed = SecretStr(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    down = settings.model_copy(update={"database_url": closed, "db_connect_timeout": 2.0})
    reason = "the database is unavailable; try again later"
    async with live(create_app(down)) as client:
        assert_unavailable(await client.get(PROFILES), reason)
        assert_unavailable(await client.get("/api/v1/jobs"), reason)
        body = {"name": "Ada", "email": "ada@example.com"}
        assert_unavailable(await client.post(PROFILES, json=body), reason)
        imports = {"profiles": [body]}
        assert_unavailable(await client.post(f"{PROFILES}/imports", json=imports), reason)


async def test_a_statement_timeout_is_503(settings: Settings, engine: AsyncEngine) -> None:
    impatient = settings.model_copy(update={"db_statement_timeout": 0.2})
    async with live(create_app(impatient)) as client, locked_profiles(engine):
        response = await client.get(PROFILES)
    assert_unavailable(response, "the database took too long to answer; try again later")


async def test_other_database_errors_stay_500(settings: Settings, engine: AsyncEngine) -> None:
    """Only 'not now' is a 503: a broken query is a bug, and a bug is a 500."""
    router = APIRouter()

    @router.get("/broken")
    async def broken(session: SessionDep) -> None:
        await session.execute(text("SELECT no_such_column FROM profiles"))

    app = create_app(settings)
    app.include_router(router)
    async with live(app) as client:
        response = await client.get("/broken")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}


# Under a real uvicorn: what happens to the connection after an error.


async def test_a_500_says_connection_close_and_the_client_carries_on(settings: Settings) -> None:
    """uvicorn closes the connection after an unhandled error; the 500 must say so."""
    async with (
        uvicorn_serving(probe_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        failed = await client.get("/boom")
        after = await client.get("/health")  # on a new connection, not a reset one
    assert failed.status_code == 500
    assert failed.headers["Connection"] == "close"
    assert failed.json() == {"detail": "internal server error"}
    assert after.status_code == 200
    assert after.extensions["network_stream"] is not failed.extensions["network_stream"]


async def test_503s_keep_the_connection_alive(settings: Settings) -> None:
    """Database trouble is handled, not raised: the connection serves the next request."""
    closed = SecretStr(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    down = settings.model_copy(update={"database_url": closed, "db_connect_timeout": 2.0})
    async with (
        uvicorn_serving(create_app(down)) as base_url,
        httpx.AsyncClient(base_url=base_url, headers=API_KEY_HEADERS) as client,
    ):
        responses = []
        for number in range(20):
            body = {"name": "Ada", "email": f"ada{number}@example.com"}
            responses.append(await client.post(PROFILES, json=body))
    assert {response.status_code for response in responses} == {503}
    assert all("close" not in response.headers.get("Connection", "") for response in responses)
    streams = {id(response.extensions["network_stream"]) for response in responses}
    assert len(streams) == 1, "every request went over the first connection"
