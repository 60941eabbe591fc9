"""The one engine factory."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from {{ cookiecutter.project_slug }}.settings import Settings


def build_engine(settings: Settings, *, migrations: bool = False) -> AsyncEngine:
    """Build an engine from settings: pooler-safe connect args, pool limits from settings.

    `migrations=True` uses the migrations URL and no pool (Alembic opens one connection).
    """
    options: dict[str, Any] = {
        "connect_args": settings.get_db_connect_args(migrations=migrations),
        "echo": settings.db_echo,
        "pool_pre_ping": settings.db_pool_pre_ping,
    }
    if migrations:
        options["poolclass"] = NullPool
    else:
        options.update(
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_recycle=settings.db_pool_recycle,
        )
    return create_async_engine(settings.get_db_url(migrations=migrations), **options)
