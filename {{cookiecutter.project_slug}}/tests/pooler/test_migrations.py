"""Migrations go through `MIGRATIONS_DATABASE_URL` (session mode or direct), never the pooler.

Transaction mode (Supavisor port 6543, pgbouncer `pool_mode = transaction`) is for the app's
short transactions; Supabase wants Alembic on session mode (port 5432) or the direct host. Here
the app URL points at pgbouncer and the migrations URL at the server: `migrate` must not touch
pgbouncer, and the app then works through pgbouncer on the migrated schema.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy.engine import URL

from {{ cookiecutter.project_slug }}.db import database_lifespan
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings

from tests.conftest import API_KEY_HEADERS, FreshDatabase, settings_for
from tests.pooler.conftest import PgBouncer
from tests.serving import PACKAGE, service_environment

pytestmark = pytest.mark.pooler


def pooled_databases(pgbouncer: PgBouncer) -> set[str]:
    """Databases pgbouncer has opened a pool for (a client connected to them)."""
    return {row["database"] for row in pgbouncer.admin("SHOW POOLS")}


async def test_migrate_uses_the_migrations_url_while_the_app_uses_pgbouncer(
    pgbouncer: PgBouncer, fresh_database: FreshDatabase, tmp_path: Path
) -> None:
    direct = await fresh_database()
    name = direct.database or ""
    pooled = pgbouncer.url(name)
    env = service_environment(
        pooled, MIGRATIONS_DATABASE_URL=direct.render_as_string(hide_password=False)
    )

    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", PACKAGE, "migrate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert name not in pooled_databases(pgbouncer)  # Alembic never went through pgbouncer
    app_settings = settings_for(pooled, migrations_database_url=env["MIGRATIONS_DATABASE_URL"])
    assert app_settings.get_db_url().port == pgbouncer.port
    assert app_settings.get_db_url(migrations=True).port == direct.port
    transport = ASGITransport(app=create_app(app_settings))
    async with (
        database_lifespan(app_settings),
        AsyncClient(transport=transport, base_url="http://test", headers=API_KEY_HEADERS) as client,
    ):
        created = await client.post(
            "/api/v1/profiles", json={"name": "Migrated", "email": "migrated@example.com"}
        )
    assert created.status_code == 201, created.text  # the schema is there, seen through pgbouncer
    assert name in pooled_databases(pgbouncer)


def test_without_a_migrations_url_migrations_would_use_the_app_url() -> None:
    """The fallback is the app URL: behind a transaction pooler, set MIGRATIONS_DATABASE_URL."""
    supabase = Settings(
        _env_file=None,
        supabase_project_ref="abcdefghijklmnopqrst",
        supabase_pooler_host="aws-1-eu-central-1.pooler.supabase.com",
        supabase_db_password="placeholder",
    )
    assert supabase.get_db_url().port == 6543  # transaction mode for the app
    assert supabase.get_db_url(migrations=True).port == 5432  # session mode for Alembic
    plain = settings_for(URL.create("postgresql+asyncpg", host="pooler.internal", port=6432))
    assert plain.get_db_url(migrations=True) == plain.get_db_url()
