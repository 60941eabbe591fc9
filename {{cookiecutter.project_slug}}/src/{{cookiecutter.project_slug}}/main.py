"""Application factory: routers, error handlers, and the database lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from {{ cookiecutter.project_slug }}.db import database_lifespan
from {{ cookiecutter.project_slug }}.errors import install_error_handlers
from {{ cookiecutter.project_slug }}.health.router import router as health_router
from {{ cookiecutter.project_slug }}.jobs.router import router as jobs_router
{%- if cookiecutter.include_pages %}
from {{ cookiecutter.project_slug }}.pages.router import router as pages_router
{%- endif %}
{%- if cookiecutter.include_places %}
from {{ cookiecutter.project_slug }}.places.router import router as places_router
{%- endif %}
from {{ cookiecutter.project_slug }}.profiles.router import router as profiles_router
from {{ cookiecutter.project_slug }}.settings import (
    Settings,
    get_settings,
)
{%- if cookiecutter.include_sitemaps %}
from {{ cookiecutter.project_slug }}.sitemaps.router import router as sitemaps_router
{%- endif %}
from {{ cookiecutter.project_slug }}.worker import task_engine


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI application; the engine is created at start-up and disposed at shutdown."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with database_lifespan(settings), task_engine(settings) as enqueue:
            app.state.enqueue = enqueue
            yield

    app = FastAPI(title=settings.app_name, lifespan=lifespan)
    app.state.settings = settings
    api = APIRouter(prefix="/api/v1")
    api.include_router(profiles_router)
    api.include_router(jobs_router)
{%- if cookiecutter.include_sitemaps %}
    api.include_router(sitemaps_router)
{%- endif %}
{%- if cookiecutter.include_places %}
    api.include_router(places_router)
{%- endif %}
{%- if cookiecutter.include_pages %}
    api.include_router(pages_router)
{%- endif %}
    app.include_router(health_router)
    app.include_router(api)
    install_error_handlers(app)
    return app
