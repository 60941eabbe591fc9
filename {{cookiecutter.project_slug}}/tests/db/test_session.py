"""The request's transaction ends before the response; background work sees committed rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import pytest
from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI
from fastapi.exceptions import DependencyScopeError
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from {{ cookiecutter.project_slug }}.db import (
    SessionDep,
    get_session_dependency,
    task_session,
)
from {{ cookiecutter.project_slug }}.db.guard import collecting
from {{ cookiecutter.project_slug }}.db.session import (
    SessionScopeError,
    assert_function_scoped,
)
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.profiles import service
from {{ cookiecutter.project_slug }}.profiles.models import Profile
from {{ cookiecutter.project_slug }}.profiles.router import router as profiles_router
from {{ cookiecutter.project_slug }}.profiles.schemas import ProfileCreate
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import API_KEY_HEADERS


async def request_scoped_session() -> AsyncIterator[AsyncSession]:
    """The same unit of work without the guard, for control experiments only."""
    async with task_session() as session:
        yield session


# FastAPI's default ("request") scope: the code after `yield` runs after the response is sent.
RequestScopedSession = Annotated[AsyncSession, Depends(request_scoped_session)]  # noqa: SL001 control experiment


@pytest.fixture
async def probe_table(engine: AsyncEngine) -> AsyncIterator[None]:
    """A table whose deferred trigger refuses every COMMIT that inserted into it."""
    statements = [
        "CREATE TABLE commit_probe (id int)",
        "CREATE FUNCTION commit_probe_refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'commit refused by the probe'; END $$",
        "CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON commit_probe "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION commit_probe_refuse()",
    ]
    async with engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))
    yield
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE commit_probe"))
        await connection.execute(text("DROP FUNCTION commit_probe_refuse()"))


@asynccontextmanager
async def live_client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A client on the app with its real lifespan: its own engine, real commits."""
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=transport, base_url="http://test", headers=API_KEY_HEADERS) as client,
    ):
        yield client


async def live_request(app: FastAPI, method: str, path: str) -> tuple[int, str]:
    """Send one request through the app's real lifespan."""
    async with live_client(app) as client:
        response = await client.request(method, path)
    return response.status_code, response.text


async def probe_rows(engine: AsyncEngine) -> int:
    """Count rows in the probe table."""
    async with engine.connect() as connection:
        return int(
            (await connection.execute(text("SELECT count(*) FROM commit_probe"))).scalar_one()
        )


async def test_failed_commit_is_a_server_error_and_stores_nothing(
    settings: Settings, engine: AsyncEngine, probe_table: None
) -> None:
    router = APIRouter()

    @router.post("/probe")
    async def insert_refused_row(session: SessionDep) -> dict[str, str]:
        await session.execute(text("INSERT INTO commit_probe VALUES (1)"))
        return {"status": "stored"}

    app = create_app(settings)
    app.include_router(router)
    status, _ = await live_request(app, "POST", "/probe")
    assert status == 500
    assert await probe_rows(engine) == 0


async def test_control_request_scope_answers_200_for_a_failed_commit(
    settings: Settings, engine: AsyncEngine, probe_table: None
) -> None:
    """Why `SessionDep` carries scope="function": without it the client is told a lie."""
    router = APIRouter()

    @router.post("/probe")
    async def insert_refused_row(session: RequestScopedSession) -> dict[str, str]:
        await session.execute(text("INSERT INTO commit_probe VALUES (1)"))
        return {"status": "stored"}

    app = create_app(settings)
    app.include_router(router)
    with collecting() as violations:  # the session guard reports the commit after the response
        status, body = await live_request(app, "POST", "/probe")
    assert (status, body) == (200, '{"status":"stored"}')
    assert await probe_rows(engine) == 0
    assert [violation.kind for violation in violations] == ["checkout_after_response"]


async def create_and_look_up_later(
    session: AsyncSession, tasks: BackgroundTasks, seen: list[Profile | None]
) -> dict[str, str]:
    """Create a profile, then look it up from background work after the response."""

    async def look_up(profile_id: uuid.UUID) -> None:
        async with task_session() as background:
            seen.append(await background.get(Profile, profile_id))

    profile = await service.create_profile(
        session, data=ProfileCreate(name="Ada", email="ada@example.com")
    )
    tasks.add_task(look_up, profile.id)  # IDs, never ORM objects or the request's session
    return {"id": str(profile.id)}


async def test_background_work_sees_committed_rows(settings: Settings, committed: None) -> None:
    seen: list[Profile | None] = []
    router = APIRouter()

    @router.post("/probe")
    async def probe(session: SessionDep, tasks: BackgroundTasks) -> dict[str, str]:
        return await create_and_look_up_later(session, tasks, seen)

    app = create_app(settings)
    app.include_router(router)
    status, _ = await live_request(app, "POST", "/probe")
    assert status == 200
    assert len(seen) == 1
    assert seen[0] is not None
    assert seen[0].email == "ada@example.com"


async def test_control_request_scope_hides_the_row_from_background_work(
    settings: Settings, committed: None
) -> None:
    seen: list[Profile | None] = []
    router = APIRouter()

    @router.post("/probe")
    async def probe(session: RequestScopedSession, tasks: BackgroundTasks) -> dict[str, str]:
        return await create_and_look_up_later(session, tasks, seen)

    app = create_app(settings)
    app.include_router(router)
    with collecting() as violations:  # the session guard reports the commit after the response
        status, _ = await live_request(app, "POST", "/probe")
    assert status == 200
    assert seen == [None]
    assert [violation.kind for violation in violations] == ["checkout_after_response"]


def bare_depends_router() -> APIRouter:
    """A router whose route takes the session with FastAPI's default (request) scope."""
    router = APIRouter()

    @router.post("/bad")
    async def bad(session: AsyncSession = Depends(get_session_dependency)) -> None:  # noqa: B008, SL001 refused
        """Takes the session with FastAPI's default request scope."""

    return router


def test_bare_depends_is_refused_when_the_app_is_built(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`create_app` walks every route once: the refusal names the route, the parameter, the fix."""
    # Restored after the test: including a router changes the router's routes and lifespan.
    monkeypatch.setattr(profiles_router, "routes", list(profiles_router.routes))
    monkeypatch.setattr(profiles_router, "lifespan_context", profiles_router.lifespan_context)
    profiles_router.include_router(bare_depends_router())
    with pytest.raises(SessionScopeError) as refused:
        create_app(settings)
    message = str(refused.value)
    assert "POST /api/v1/profiles/bad: parameter 'session' of bad" in message
    assert "SessionDep" in message
    assert 'Depends(get_session_dependency, scope="function")' in message
    assert isinstance(refused.value, DependencyScopeError)  # what FastAPI itself raised before


async def test_a_route_added_after_create_app_is_refused_at_start_up(settings: Settings) -> None:
    app = create_app(settings)
    app.include_router(bare_depends_router())
    with pytest.raises(SessionScopeError, match="POST /bad: parameter 'session'"):
        async with app.router.lifespan_context(app):
            pass


async def repository(session: AsyncSession = Depends(get_session_dependency)) -> AsyncSession:  # noqa: B008, SL001 refused
    """A dependency of a route that takes the session with the request scope."""
    return session


def test_nested_and_router_level_uses_are_refused() -> None:
    app = FastAPI()

    @app.get("/nested")
    async def nested(repo: Annotated[AsyncSession, Depends(repository)]) -> None:  # noqa: SL001 refused
        """Takes the session through a dependency of its own."""

    router = APIRouter(dependencies=[Depends(get_session_dependency)])  # noqa: SL001 refused

    @router.delete("/items")
    async def delete_items() -> None:
        """Takes the session through its router's dependencies."""

    app.include_router(router, prefix="/api")
    with pytest.raises(SessionScopeError) as refused:
        assert_function_scoped(app)
    assert "GET /nested: parameter 'session' of repository" in str(refused.value)
    assert "DELETE /api/items: a dependencies entry of delete_items" in str(refused.value)


def test_explicit_function_scope_is_accepted() -> None:
    app = FastAPI()

    @app.get("/good")
    async def good(
        session: AsyncSession = Depends(get_session_dependency, scope="function"),  # noqa: B008
    ) -> None:
        """The seed's spelling, with the scope that makes it correct."""

    @app.get("/alias")
    async def alias(session: SessionDep) -> None:
        """The alias."""

    assert_function_scoped(app)  # no error
    assert {getattr(route, "path", None) for route in app.routes} >= {"/good", "/alias"}


async def test_handler_error_rolls_back(
    settings: Settings, engine: AsyncEngine, committed: None
) -> None:
    router = APIRouter()

    @router.post("/probe")
    async def create_then_fail(session: SessionDep) -> None:
        await service.create_profile(session, data=ProfileCreate(name="Bo", email="bo@example.com"))
        raise RuntimeError("boom after a flush")

    app = create_app(settings)
    app.include_router(router)
    status, _ = await live_request(app, "POST", "/probe")
    assert status == 500
    async with engine.connect() as connection:
        count = (await connection.execute(text("SELECT count(*) FROM profiles"))).scalar_one()
    assert count == 0


async def test_no_connection_is_left_idle_in_transaction(
    settings: Settings, engine: AsyncEngine, committed: None, probe_table: None
) -> None:
    router = APIRouter()

    @router.post("/probe")
    async def insert_refused_row(session: SessionDep) -> None:
        await session.execute(text("INSERT INTO commit_probe VALUES (1)"))

    app = create_app(settings)
    app.include_router(router)
    async with live_client(app) as client, engine.connect() as observer:
        for _ in range(3):
            assert (await client.post("/probe")).status_code == 500
            assert (await client.post("/api/v1/profiles", json={})).status_code == 422
            assert (await client.get(f"/api/v1/profiles/{uuid.uuid4()}")).status_code == 404
        states = await observer.execute(
            text(
                "SELECT state FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        seen = [row.state for row in states]
    assert seen, "the app's pooled connections should be visible"
    assert all(state == "idle" for state in seen), seen


async def test_task_session_outside_a_configured_database_explains_itself() -> None:
    with pytest.raises(RuntimeError, match="database_lifespan"):
        async with task_session():
            pass
