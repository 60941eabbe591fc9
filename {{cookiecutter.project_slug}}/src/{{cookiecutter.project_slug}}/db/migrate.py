"""Alembic, driven from code on the application's own engine builder and settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from {{ cookiecutter.project_slug }}.db.engine import build_engine
from {{ cookiecutter.project_slug }}.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    """Return an Alembic config whose env.py uses `settings` (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["settings"] = settings
    return config


async def _run(settings: Settings, action: Callable[..., Any], *args: str) -> None:
    """Run an Alembic command on one connection of the migrations URL, in one transaction."""
    engine = build_engine(settings, migrations=True)
    config = alembic_config(settings)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        action(config, *args)

    try:
        async with engine.begin() as connection:
            await connection.run_sync(run)
    finally:
        await engine.dispose()


async def upgrade(settings: Settings, revision: str = "head") -> None:
    """Migrate the database up to `revision`."""
    await _run(settings, command.upgrade, revision)


async def downgrade(settings: Settings, revision: str = "base") -> None:
    """Migrate the database down to `revision`."""
    await _run(settings, command.downgrade, revision)


async def check(settings: Settings) -> None:
    """Fail if the models and the migrations disagree (`alembic check`)."""
    await _run(settings, command.check)
