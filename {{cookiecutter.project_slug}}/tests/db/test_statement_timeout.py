"""`DB_STATEMENT_TIMEOUT`: `SET LOCAL` at the start of every transaction of the one factory.

Request sessions, `task_session()` and the tests' savepoint-bound sessions all get it; it ends
with its transaction, so a pooled connection (or a pooler's server connection) never keeps it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from {{ cookiecutter.project_slug }}.db import database_lifespan, task_session
from {{ cookiecutter.project_slug }}.settings import Settings

SHOW = text("SHOW statement_timeout")


async def test_task_sessions_get_the_timeout_in_every_transaction(settings: Settings) -> None:
    impatient = settings.model_copy(update={"db_statement_timeout": 0.25})
    async with database_lifespan(impatient) as engine, task_session() as session:
        assert await session.scalar(SHOW) == "250ms"
        await session.commit()  # a new transaction begins with the next statement
        assert await session.scalar(SHOW) == "250ms"
        with pytest.raises(DBAPIError) as caught:
            await session.execute(text("SELECT pg_sleep(5)"))
        assert getattr(caught.value.orig, "sqlstate", None) == "57014"
        await session.rollback()
        async with engine.connect() as plain:  # the same pool, outside the session factory
            assert await plain.scalar(SHOW) == "0", "the setting ended with its transaction"


async def test_zero_turns_the_timeout_off(settings: Settings) -> None:
    patient = settings.model_copy(update={"db_statement_timeout": 0.0})
    async with database_lifespan(patient), task_session() as session:
        assert await session.scalar(SHOW) == "0"


async def test_savepoint_bound_test_sessions_get_it_too(
    session: AsyncSession, settings: Settings
) -> None:
    expected = f"{round(settings.db_statement_timeout)}s"
    assert await session.scalar(SHOW) == expected
    await session.commit()  # releases the test's savepoint; the next statement opens another
    assert await session.scalar(SHOW) == expected
    async with session.begin_nested():  # a savepoint inherits the transaction's setting
        assert await session.scalar(SHOW) == expected


async def test_the_timeout_stops_a_request_waiting_on_a_lock(
    settings: Settings, engine: AsyncEngine
) -> None:
    impatient = settings.model_copy(update={"db_statement_timeout": 0.2})
    async with engine.connect() as locker:
        await locker.execute(text("LOCK TABLE profiles IN ACCESS EXCLUSIVE MODE"))
        async with database_lifespan(impatient), task_session() as session:
            with pytest.raises(DBAPIError, match="statement timeout"):
                await session.execute(text("SELECT count(*) FROM profiles"))
        await locker.rollback()
