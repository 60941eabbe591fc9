"""The migrations build exactly the models' schema, and go down and up again."""

from __future__ import annotations

from sqlalchemy import inspect

from {{ cookiecutter.project_slug }}.db import migrate
from {{ cookiecutter.project_slug }}.db.engine import build_engine
from {{ cookiecutter.project_slug }}.models import Base
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import FreshDatabase, settings_for


async def test_models_match_migrations(settings: Settings) -> None:
    await migrate.check(settings)  # raises if `alembic revision --autogenerate` would find changes


async def _tables(settings: Settings) -> set[str]:
    engine = build_engine(settings, migrations=True)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return set(names) - {"alembic_version"}


async def test_upgrade_downgrade_upgrade(fresh_database: FreshDatabase) -> None:
    settings = settings_for(await fresh_database())
    expected = set(Base.metadata.tables)
    await migrate.upgrade(settings)
    assert await _tables(settings) == expected
    await migrate.downgrade(settings, "base")
    assert await _tables(settings) == set()
    await migrate.upgrade(settings)
    assert await _tables(settings) == expected
