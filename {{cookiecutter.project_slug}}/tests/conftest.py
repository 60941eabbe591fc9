"""Test harness: a real PostgreSQL, a fresh migrated database per run, a rollback per test.

`TEST_DATABASE_URL` names a server on which the tests may create and drop databases; when it
is unset, an embedded throwaway PostgreSQL is started instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from {{ cookiecutter.project_slug }}.db import SessionFactory, migrate
from {{ cookiecutter.project_slug }}.db.embedded import embedded_postgres
from {{ cookiecutter.project_slug }}.db.engine import build_engine
from {{ cookiecutter.project_slug }}.db.guard import collecting, guarding
from {{ cookiecutter.project_slug }}.db.session import bind_sessions
from {{ cookiecutter.project_slug }}.jobs.runner import (
    JobResources,
    job_resources,
)
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.models import Base
from {{ cookiecutter.project_slug }}.settings import Settings
from {{ cookiecutter.project_slug }}.worker import task_engine

from tests.localserver import LocalServer

DATABASE_PREFIX = "test_{{ cookiecutter.project_slug }}_"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
TEST_API_KEY = "test-api-key-not-a-secret"
"""The API key of the tests' settings (`API_KEYS`); send it as `X-API-Key` or a Bearer token."""
API_KEY_HEADERS = {"X-API-Key": TEST_API_KEY}
"""Headers that authorise a test client's requests."""


def unavailable(reason: str) -> NoReturn:
    """Skip for a missing component on a developer's machine; fail under `CI=true`."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: CI must provide it)")
    pytest.skip(reason)


def settings_for(url: URL, **overrides: Any) -> Settings:
    """Settings for `url` that ignore the developer's `.env` file.

    SSL is off unless the URL asks for it (`?sslmode=require`), whatever the provider default.
    """
    values: dict[str, Any] = {
        "environment": "test",
        "api_keys": (TEST_API_KEY,),  # outside development every mutating request needs a key
        "database_url": SecretStr(url.render_as_string(hide_password=False)),
        "db_ssl_mode": "disable",
        "tasks_inline": True,  # in-memory jobs run inside the request, on the test's connection
        "outbound_allowlist": "127.0.0.0/8, ::1",  # the tests' local HTTP servers
        "outbound_timeout": 2.0,
        "db_session_guard": "strict",  # an app or worker started by a test fails it too
        **overrides,
    }
    return Settings(_env_file=None, **values)


async def execute_autocommit(server: URL, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE)."""
    engine = build_engine(settings_for(server), migrations=True)
    try:
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(autouse=True)
def session_guard() -> Iterator[None]:
    """Fail the test whose code broke a session rule at run time (the strict session guard)."""
    slow = Settings.model_fields["db_slow_transaction_ms"].default
    with guarding("strict", slow_transaction_ms=slow), collecting() as violations:
        yield
    if violations:
        pytest.fail("session guard:\n" + "\n".join(map(str, violations)), pytrace=False)


@pytest.fixture(scope="session")
def database_server() -> Iterator[URL]:
    """URL of a PostgreSQL server: `TEST_DATABASE_URL`, or an embedded one."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield make_url(configured)
        return
    # Not under pytest's basetemp: when the tests run as root, pgserver runs PostgreSQL as an
    # unprivileged user, and every new pytest process resets that tree to mode 0700.
    parent = Path(tempfile.mkdtemp(prefix="test-postgres-"))
    try:
        with embedded_postgres(parent / "data", keep=False) as url:
            yield url
    finally:
        shutil.rmtree(parent, ignore_errors=True)


FreshDatabase = Callable[[], Awaitable[URL]]


@pytest.fixture(scope="session")
async def fresh_database(database_server: URL) -> AsyncIterator[FreshDatabase]:
    """Factory of empty databases on the test server, dropped at the end of the run."""
    created: list[str] = []

    async def make() -> URL:
        name = f"{DATABASE_PREFIX}{uuid.uuid4().hex[:12]}"
        await execute_autocommit(database_server, f'CREATE DATABASE "{name}"')
        created.append(name)
        return database_server.set(database=name)

    yield make
    for name in created:
        await drop_database(database_server, name)


async def drop_database(server: URL, name: str, attempts: int = 3) -> None:
    """Drop a test database, retrying while the server recovers from a dropped connection."""
    for attempt in range(1, attempts + 1):
        try:
            await execute_autocommit(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except DBAPIError as error:
            if attempt == attempts:
                raise
            print(f"DROP DATABASE {name} failed ({error.orig!r}); retrying", file=sys.stderr)
            await asyncio.sleep(attempt)


@pytest.fixture(scope="session")
async def settings(fresh_database: FreshDatabase) -> Settings:
    """Settings of this run's database, migrated to head with the real Alembic migrations."""
    settings = settings_for(await fresh_database())
    await migrate.upgrade(settings)
    return settings


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The run's engine, built by the application's engine factory."""
    engine = build_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine: AsyncEngine, settings: Settings) -> AsyncIterator[SessionFactory]:
    """Bind every session (request and background) to one connection, rolled back after the test.

    Commits inside the test release savepoints (`create_savepoint`), so nothing leaks. Each
    session transaction sets the statement timeout, as the app's do.
    """
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            with bind_sessions(
                connection,
                statement_timeout=settings.db_statement_timeout,
                join_transaction_mode="create_savepoint",
            ) as factory:
                yield factory
        finally:
            await transaction.rollback()


@pytest.fixture
async def session(sessions: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A session inside the test's rolled-back transaction, for service tests."""
    async with sessions() as session:
        yield session


@pytest.fixture
async def resources(settings: Settings) -> AsyncIterator[JobResources]:
    """The job resources (outbound client) a task engine would give its jobs."""
    async with job_resources(settings) as resources:
        yield resources


@pytest.fixture(scope="session")
def app(settings: Settings) -> FastAPI:
    """The application under test."""
    return create_app(settings)


@pytest.fixture
async def client(
    app: FastAPI, settings: Settings, sessions: SessionFactory
) -> AsyncIterator[AsyncClient]:
    """An HTTP client on the ASGI app; its requests (and jobs) run inside the test's transaction."""
    async with api_client(app, settings) as client:
        yield client


@asynccontextmanager
async def api_client(app: FastAPI, settings: Settings) -> AsyncIterator[AsyncClient]:
    """A client on `app` with an in-memory task engine, without the app's database lifespan.

    It sends the tests' API key (`TEST_API_KEY`).
    """
    async with task_engine(settings) as enqueue:
        app.state.enqueue = enqueue
        transport = ASGITransport(app=app)
        async with AsyncClient(
            transport=transport, base_url="http://test", headers=API_KEY_HEADERS
        ) as client:
            yield client


@pytest.fixture
def site() -> Iterator[LocalServer]:
    """A local web site (tests/fixtures and scripted routes) on 127.0.0.1."""
    with LocalServer().running() as running:
        yield running


@pytest.fixture
async def committed(engine: AsyncEngine) -> AsyncIterator[None]:
    """For tests whose requests must really commit: empty every table afterwards."""
    yield
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} CASCADE"))
