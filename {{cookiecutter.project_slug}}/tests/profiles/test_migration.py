"""Migration 0007: emails unique case-insensitively, and what it does with existing rows."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from {{ cookiecutter.project_slug }}.db import migrate
from {{ cookiecutter.project_slug }}.db.engine import build_engine
from {{ cookiecutter.project_slug }}.profiles.models import EMAIL_UNIQUE_INDEX
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import FreshDatabase, settings_for

BEFORE = "0006"


async def sql(settings: Settings, statement: str) -> list[tuple[object, ...]]:
    """Run one statement in its own committed transaction; return its rows, if any."""
    engine = build_engine(settings, migrations=True)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


async def insert(settings: Settings, *emails: str) -> None:
    """Store one profile per email."""
    values = ", ".join(f"('p{n}', '{email}')" for n, email in enumerate(emails))
    await sql(settings, f"INSERT INTO profiles (name, email) VALUES {values}")


async def revision(settings: Settings) -> str:
    """The database's Alembic revision."""
    [(current,)] = await sql(settings, "SELECT version_num FROM alembic_version")
    return str(current)


@pytest.fixture
async def at_0006(fresh_database: FreshDatabase) -> Settings:
    """A new database migrated up to the revision before 0007."""
    settings = settings_for(await fresh_database())
    await migrate.upgrade(settings, BEFORE)
    return settings


async def test_rows_that_differ_only_in_case_stop_the_upgrade_and_change_nothing(
    at_0006: Settings,
) -> None:
    await insert(at_0006, "ada@example.com", "Ada@Example.com", "alan@example.com")
    ids = await sql(at_0006, "SELECT id::text FROM profiles WHERE lower(email) = 'ada@example.com'")

    with pytest.raises(RuntimeError, match="differ only in letter case") as raised:
        await migrate.upgrade(at_0006)

    assert all(str(id_) in str(raised.value) for (id_,) in ids)  # which profiles to fix
    assert await revision(at_0006) == BEFORE
    assert len(await sql(at_0006, "SELECT 1 FROM profiles")) == 3

    await sql(at_0006, "DELETE FROM profiles WHERE email = 'Ada@Example.com'")
    await migrate.upgrade(at_0006)
    assert await revision(at_0006) != BEFORE


async def test_the_index_refuses_another_case_and_the_downgrade_restores_the_old_rule(
    at_0006: Settings,
) -> None:
    await migrate.upgrade(at_0006)
    await insert(at_0006, "ada@example.com")
    with pytest.raises(IntegrityError, match=EMAIL_UNIQUE_INDEX):
        await insert(at_0006, "ADA@example.com")

    await migrate.downgrade(at_0006, BEFORE)
    await insert(at_0006, "ADA@example.com")  # case-sensitive again, as before 0007
    with pytest.raises(IntegrityError, match="uq_profiles_email"):
        await insert(at_0006, "ada@example.com")
