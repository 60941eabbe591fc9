"""The statement timeout behind a real pgbouncer in transaction mode.

pgbouncer refuses `statement_timeout` as a startup parameter; `SET LOCAL` inside each
transaction passes, applies, and leaves nothing on the server connection for the next client.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from {{ cookiecutter.project_slug }}.db import database_lifespan, task_session

from tests.conftest import settings_for
from tests.pooler.conftest import PgBouncer

pytestmark = pytest.mark.pooler


async def test_set_local_works_through_pgbouncer(
    pgbouncer: PgBouncer, pooler_database: URL
) -> None:
    pooled = pgbouncer.url(pooler_database.database or "postgres")
    settings = settings_for(pooled, db_statement_timeout=0.25)
    async with database_lifespan(settings) as engine:
        async with task_session() as session:
            assert await session.scalar(text("SHOW statement_timeout")) == "250ms"
            with pytest.raises(DBAPIError) as caught:
                await session.execute(text("SELECT pg_sleep(5)"))
            assert getattr(caught.value.orig, "sqlstate", None) == "57014"
            await session.rollback()
        for _ in range(5):  # whichever server connection pgbouncer hands out next
            async with engine.connect() as plain:
                assert await plain.scalar(text("SHOW statement_timeout")) == "0"
