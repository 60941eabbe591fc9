"""Application factory: routers, the API's edge (docs/api.md), error handlers, lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.trustedhost import TrustedHostMiddleware

from {{ cookiecutter.project_slug }}.db import database_lifespan
from {{ cookiecutter.project_slug }}.edge.keys import (
    API_KEY_HEADER,
    KeyRing,
    require_api_key,
)
from {{ cookiecutter.project_slug }}.edge.openapi import document_edge
from {{ cookiecutter.project_slug }}.edge.ratelimit import build_job_limiter
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

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI application; the engine is created at start-up and disposed at shutdown."""
    settings = settings or get_settings()
    keys = KeyRing.from_settings(settings)
    job_limiter = build_job_limiter(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if keys.required and not keys.digests:
            logger.error(
                "ENVIRONMENT=%s requires API keys and API_KEYS is empty: every request that "
                "changes data answers 503 until API_KEYS is set",
                settings.environment,
            )
        try:
            async with database_lifespan(settings), task_engine(settings) as enqueue:
                app.state.enqueue = enqueue
                yield
        finally:
            if job_limiter is not None:
                await job_limiter.aclose()

    docs = settings.api_docs_served
    app = FastAPI(
        title=settings.app_name,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        max_body_size=settings.max_body_bytes,
    )
    app.state.settings = settings
    app.state.key_ring = keys
    app.state.job_limiter = job_limiter
    # Every router under /api/v1, including ones added later, needs a key for any method but
    # GET, HEAD and OPTIONS; job submissions need one whatever the method (jobs.queue).
    api = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_key)])
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
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type", API_KEY_HEADER],
            expose_headers=["Retry-After"],
        )
    if settings.trusted_hosts:  # outermost: a request for another host gets no further
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(settings.trusted_hosts))
    document_edge(
        app,
        keys=keys,
        rate_limited=job_limiter is not None,
        trusted_hosts=bool(settings.trusted_hosts),
    )
    return app
