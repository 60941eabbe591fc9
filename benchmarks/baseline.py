"""Baselines for `GET /api/v1/profiles/{id}`: the same query without the generated app's layers.

- `raw_app`: Starlette and a raw asyncpg pool (the driver's defaults, statement cache on).
- `core_app`: Starlette and SQLAlchemy Core on the generated project's own engine factory
  (`db.engine.build_engine`, pooler-safe settings): the cost of SQLAlchemy without FastAPI, the
  session and the ORM.

Both answer the same JSON as the generated app and take the same environment (`DATABASE_URL`,
`DB_POOL_SIZE`, `DB_MAX_OVERFLOW`). Serve them with `uvicorn --factory benchmarks.baseline:raw_app`.
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import Column, DateTime, MetaData, String, Table, Uuid, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

QUERY = "SELECT id, name, email, created_at, updated_at FROM profiles WHERE id = $1"
PATH = "/api/v1/profiles/{profile_id}"

profiles = Table(
    "profiles",
    MetaData(),
    Column("id", Uuid, primary_key=True),
    Column("name", String(200)),
    Column("email", String(320)),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
)

Fetch = Callable[[uuid.UUID], Awaitable[dict[str, Any] | None]]


def _body(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "email": row["email"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


def _endpoint(fetch: Callable[[], Fetch]) -> Callable[[Request], Awaitable[Response]]:
    async def get_profile(request: Request) -> Response:
        try:
            profile_id = uuid.UUID(request.path_params["profile_id"])
        except ValueError:
            return JSONResponse({"detail": "invalid id"}, status_code=422)
        row = await fetch()(profile_id)
        if row is None:
            return JSONResponse({"detail": f"profile {profile_id} not found"}, status_code=404)
        return JSONResponse(_body(row))

    return get_profile


def _pool_limits() -> tuple[int, int]:
    size = int(os.environ.get("DB_POOL_SIZE", "5"))
    return size, size + int(os.environ.get("DB_MAX_OVERFLOW", "10"))


def raw_app() -> Starlette:
    """Starlette with a raw asyncpg pool: the fastest way this machine answers the request."""
    state: dict[str, Fetch] = {}

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        low, high = _pool_limits()
        url = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
        async with asyncpg.create_pool(url, min_size=low, max_size=high) as pool:

            async def fetch(profile_id: uuid.UUID) -> dict[str, Any] | None:
                row = await pool.fetchrow(QUERY, profile_id)
                return None if row is None else dict(row)

            state["fetch"] = fetch
            yield

    return Starlette(routes=[Route(PATH, _endpoint(lambda: state["fetch"]))], lifespan=lifespan)


def core_app() -> Starlette:
    """Starlette with SQLAlchemy Core on the generated project's engine (pooler-safe defaults)."""
    package = os.environ["BENCH_PACKAGE"]
    settings_module = importlib.import_module(f"{package}.settings")
    engine_module = importlib.import_module(f"{package}.db.engine")
    state: dict[str, Fetch] = {}

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        engine = engine_module.build_engine(settings_module.Settings())
        statement = select(profiles)

        async def fetch(profile_id: uuid.UUID) -> dict[str, Any] | None:
            async with engine.begin() as connection:  # BEGIN ... COMMIT, like the session
                result = await connection.execute(statement.where(profiles.c.id == profile_id))
                row = result.mappings().first()
            return None if row is None else dict(row)

        state["fetch"] = fetch
        try:
            yield
        finally:
            await engine.dispose()

    return Starlette(routes=[Route(PATH, _endpoint(lambda: state["fetch"]))], lifespan=lifespan)
