"""Alembic environment: async, with the application's settings and engine builder."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from {{ cookiecutter.project_slug }}.db.engine import build_engine
from {{ cookiecutter.project_slug }}.models import Base
from {{ cookiecutter.project_slug }}.settings import (
    Settings,
    get_settings,
)

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _settings() -> Settings:
    settings = config.attributes.get("settings")
    return settings if isinstance(settings, Settings) else get_settings()


def _configure(connection: Connection | None = None) -> None:
    if connection is None:  # offline: render SQL for the migrations URL
        url = _settings().get_db_url(migrations=True)
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    else:
        context.configure(connection=connection, target_metadata=target_metadata)


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = build_engine(_settings(), migrations=True)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    _configure()
    with context.begin_transaction():
        context.run_migrations()
elif isinstance(shared := config.attributes.get("connection"), Connection):
    _run_sync(shared)  # called from db.migrate, on the connection it opened
else:
    asyncio.run(_run_online())  # the `alembic` command line
