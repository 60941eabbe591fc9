"""Baselines for `GET /api/v1/profiles/{id}`: the same query without the generated app's layers.

- `raw_app`: Starlette and a raw asyncpg pool (the driver's defaults, statement cache on).
- `core_app`: Starlette and SQLAlchemy Core on the generated project's own engine factory
  (`db.engine.build_engine`, pooler-safe settings): the cost of SQLAlchemy without FastAPI, the
  session and the ORM.
- `idiomatic_app`: what the popular FastAPI + SQLAlchemy async templates do, written here from
  that description: an `async_sessionmaker`, a yield dependency with FastAPI's default (request)
  scope that commits after the handler, `session.get`, a pydantic `response_model`; the engine
  with the template's own pooler-safe statement settings (`Settings.get_db_connect_args`:
  asyncpg's statement cache off, SQLAlchemy's kept) and the same pool settings (`pool_pre_ping`
  on). `idiomatic_caches_off_app`: the same with both statement caches off, the usual advice
  for transaction-mode poolers. `idiomatic_cached_app`: the same with the driver's default
  statement caches (what those templates ship; unsafe behind a transaction-mode pooler).

All answer the same JSON as the generated app and take the same environment (`DATABASE_URL`,
`DB_POOL_SIZE`, `DB_MAX_OVERFLOW`, ...). Serve them with
`uvicorn --factory benchmarks.baseline:raw_app`.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Column, DateTime, MetaData, String, Table, Uuid, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
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


# --- the idiomatic pattern of the popular templates ------------------------------------------


class _IdiomaticBase(DeclarativeBase):
    pass


class IdiomaticProfile(_IdiomaticBase):
    """The `profiles` table as an ORM model of its own (the template's is not reused)."""

    __tablename__ = "profiles"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class IdiomaticProfileRead(BaseModel):
    """The response model, read from the ORM object."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    email: str
    created_at: dt.datetime
    updated_at: dt.datetime


STATEMENT_ARGS = ("statement_cache_size", "prepared_statement_cache_size")
"""The driver settings of statement caching (asyncpg's and SQLAlchemy's)."""


def _idiomatic(statements: str) -> FastAPI:
    """The idiomatic pattern; `statements`: "template" (the template's statement settings),
    "off" (both caches off) or "driver" (the driver's defaults)."""
    package = os.environ["BENCH_PACKAGE"]
    settings = importlib.import_module(f"{package}.settings").Settings()
    template = {
        key: value for key, value in settings.get_db_connect_args().items() if key in STATEMENT_ARGS
    }
    connect_args = {
        "template": template,
        "off": dict.fromkeys(STATEMENT_ARGS, 0),
        "driver": {},
    }[statements]
    engine = create_async_engine(
        settings.get_db_url(),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping,
        connect_args=connect_args,
    )
    session_factory = async_sessionmaker(engine, expire_on_commit=False)

    async def get_db() -> AsyncIterator[AsyncSession]:
        async with session_factory() as session:
            yield session
            await session.commit()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get(PATH, response_model=IdiomaticProfileRead)
    async def get_profile(
        profile_id: uuid.UUID,
        db: AsyncSession = Depends(get_db),  # noqa: B008
    ) -> IdiomaticProfile:
        profile = await db.get(IdiomaticProfile, profile_id)
        if profile is None:
            raise HTTPException(status_code=404, detail=f"profile {profile_id} not found")
        return profile

    return app


def idiomatic_app() -> FastAPI:
    """The popular templates' pattern with the template's pooler-safe statement settings."""
    return _idiomatic("template")


def idiomatic_caches_off_app() -> FastAPI:
    """The popular templates' pattern with both statement caches off (the usual pooler advice)."""
    return _idiomatic("off")


def idiomatic_cached_app() -> FastAPI:
    """The popular templates' pattern with the driver's default statement caches."""
    return _idiomatic("driver")
